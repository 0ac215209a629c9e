package station

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Actions the access log records (Directive (EU) 2016/680, Article 25:
// consultation and disclosure).
const (
	ActionSignIn   = "sign_in"
	ActionSignOut  = "sign_out"
	ActionView     = "view"
	ActionPrint    = "print"
	ActionExport   = "export"
	ActionDownload = "download"
	ActionTriage   = "state_change"
	ActionNote     = "note"
	ActionMessage  = "message"
	// ActionMessageSent is the disclosure: the relay stored the message
	// for the platform. ActionMessageRefused: it refused it for good.
	ActionMessageSent    = "message_sent"
	ActionMessageRefused = "message_refused"
	ActionAttachment     = "attachment_view"
	ActionLogView        = "access_log_view"
	ActionLogCSV         = "access_log_export"
	// A lead's management of users: the detail names the user.
	ActionUserSuspend    = "user_suspend"
	ActionUserReinstate  = "user_reinstate"
	ActionSessionsRevoke = "sessions_revoke"
)

// Access is one entry of the access log: who did what, when, to which
// notice. It holds no content of the notice.
type Access struct {
	Seq    int64
	At     time.Time
	User   string
	Action string
	Notice string
	Detail string
}

func logAccess(ctx context.Context, tx *sql.Tx, a Access) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO access_log (at, user_id, action, notice_id, detail) VALUES (?, ?, ?, ?, ?)`,
		ts(a.At), a.User, a.Action, a.Notice, a.Detail)
	if err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	return nil
}

// Log appends an entry to the access log.
func (s *Store) Log(ctx context.Context, a Access) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return logAccess(ctx, tx, a) })
}

// AccessLog returns up to limit entries older than before (0: the newest),
// newest first.
func (s *Store) AccessLog(ctx context.Context, before int64, limit int) ([]Access, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	var out []Access
	err := s.each(ctx, `SELECT seq, at, user_id, action, notice_id, detail FROM access_log
		WHERE seq < ? ORDER BY seq DESC LIMIT ?`, func(rows *sql.Rows) error {
		var a Access
		var at string
		err := rows.Scan(&a.Seq, &at, &a.User, &a.Action, &a.Notice, &a.Detail)
		a.At = parseTS(at)
		out = append(out, a)
		return err
	}, before, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the access log: %w", err)
	}
	return out, nil
}

// WriteAccessCSV writes the whole access log, oldest first, as CSV.
func (s *Store) WriteAccessCSV(ctx context.Context, w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "time", "user", "action", "notice", "detail"})
	err := s.each(ctx, `SELECT seq, at, user_id, action, notice_id, detail FROM access_log ORDER BY seq`, func(rows *sql.Rows) error {
		var seq int64
		var at, user, action, notice, detail string
		if err := rows.Scan(&seq, &at, &user, &action, &notice, &detail); err != nil {
			return err
		}
		return cw.Write([]string{strconv.FormatInt(seq, 10), parseTS(at).Format(time.RFC3339Nano), user, action, notice, detail})
	})
	cw.Flush()
	if err = errors.Join(err, cw.Error()); err != nil {
		return fmt.Errorf("exporting the access log: %w", err)
	}
	return nil
}
