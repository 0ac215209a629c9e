package station

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MessageKinds are what an authority may send a platform (contract section 8).
var MessageKinds = []string{"request_information", "preservation_request", "feedback", "other"}

// Statuses of a message: received from the platform; written here and
// pending until the relay stored it; sent; or refused by the relay for
// good (it will not be retried).
const (
	MessageReceived = "received"
	MessagePending  = "pending"
	MessageSent     = "sent"
	MessageRefused  = "refused"
)

// Message is one message of the thread between the station's authority
// and the platform about a notice (contract section 8).
type Message struct {
	// ID is the relay's id of a received message, and the station's own
	// of one it sends (also its Idempotency-Key).
	ID        string `json:"id"`
	Direction string `json:"direction"` // in (from the platform) or out
	Kind      string `json:"kind"`
	Text      string `json:"text"`
	// InReplyTo is the relay's id of the message this one answers.
	InReplyTo string `json:"in_reply_to,omitempty"`
	// RelayID and SentAt are the relay's answer to an outgoing message.
	RelayID string `json:"relay_id,omitempty"`
	SentAt  string `json:"sent_at,omitempty"`
	User    string `json:"user,omitempty"`
	Status  string `json:"status"`
	// At is when the platform sent it (in) or an analyst wrote it (out).
	At        time.Time `json:"-"`
	Attempts  int       `json:"-"`
	LastError string    `json:"-"`
	// Answers describes the message this one answers, when it is in the thread.
	Answers string `json:"-"`
}

// ThreadID is the id by which the relay and the platform know m ("" for
// an outgoing message the relay has not stored yet).
func (m Message) ThreadID() string {
	if m.Direction == "out" {
		return m.RelayID
	}
	return m.ID
}

// thread reads n's messages, oldest first.
func (s *Store) thread(ctx context.Context, n *Notice) error {
	err := s.each(ctx, `SELECT id, direction, kind, text, in_reply_to, user_id, status, at, relay_id, sent_at,
		attempts, last_error FROM messages WHERE notice_id = ? ORDER BY at, id`, func(rows *sql.Rows) error {
		var m Message
		var at string
		if err := rows.Scan(&m.ID, &m.Direction, &m.Kind, &m.Text, &m.InReplyTo, &m.User, &m.Status, &at, &m.RelayID,
			&m.SentAt, &m.Attempts, &m.LastError); err != nil {
			return err
		}
		m.At = parseTS(at)
		if m.Direction == "in" {
			m.SentAt = m.At.Format(time.RFC3339)
		}
		n.Messages = append(n.Messages, m)
		return nil
	}, n.ID)
	if err != nil {
		return err
	}
	for i, m := range n.Messages {
		if m.InReplyTo == "" {
			continue
		}
		for _, o := range n.Messages {
			if o.ThreadID() == m.InReplyTo {
				who := "the platform's message"
				if o.Direction == "out" {
					who = "the " + strings.ReplaceAll(o.Kind, "_", " ") + " by " + o.User
				}
				n.Messages[i].Answers = who + " of " + o.At.UTC().Format("2006-01-02 15:04 UTC")
			}
		}
	}
	return nil
}

// MessageError says what is wrong with a message an analyst wrote,
// naming the field.
type MessageError = TriageError

// QueueMessage stores a message to the platform as written by user, as
// pending, and logs it. It is sent by SendPending (or its caller) with id
// as its Idempotency-Key, so that however often it is sent, the relay
// stores it once. inReplyTo, when set, must be the relay's id of a message
// of the thread.
func (s *Store) QueueMessage(ctx context.Context, noticeID, user, id, kind, text, inReplyTo string, now time.Time) error {
	text = strings.TrimSpace(text)
	switch {
	case !slices.Contains(MessageKinds, kind):
		return &MessageError{"kind", "must be one of " + strings.Join(MessageKinds, ", ")}
	case text == "" || !utf8.ValidString(text) || utf8.RuneCountInString(text) > 10000:
		return &MessageError{"text", "write 1 to 10000 characters"}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM notices WHERE id = ?`, noticeID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if inReplyTo != "" {
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE notice_id = ? AND
				((direction = 'in' AND id = ?) OR (direction = 'out' AND relay_id = ?))`, noticeID, inReplyTo, inReplyTo).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return &MessageError{"in_reply_to", "no message of this thread"}
			}
			if err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO messages (id, notice_id, direction, kind, text, in_reply_to, user_id, status, at)
			VALUES (?, ?, 'out', ?, ?, ?, ?, 'pending', ?)`, id, noticeID, kind, text, inReplyTo, user, ts(now)); err != nil {
			return err
		}
		return logAccess(ctx, tx, Access{At: now, User: user, Action: ActionMessage, Notice: noticeID, Detail: "kind=" + kind + " pending id=" + id})
	})
}

// Outgoing is a pending message as the sender needs it.
type Outgoing struct {
	ID, NoticeID, Kind, Text, InReplyTo, User string
	// DeliveryID is a delivery of the notice to this station: the relay
	// takes messages about a notice under the id of a delivery of it.
	DeliveryID string
	Attempts   int
}

// PendingMessages returns up to limit outgoing messages not yet sent,
// oldest first; id, when set, returns only that one.
func (s *Store) PendingMessages(ctx context.Context, id string, limit int) ([]Outgoing, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.id, m.notice_id, m.kind, m.text, m.in_reply_to, m.user_id, m.attempts,
			COALESCE((SELECT d.id FROM deliveries d WHERE d.notice_id = m.notice_id
				ORDER BY d.type IN ('notice', 'escalation') DESC, d.stored_at LIMIT 1), '')
		FROM messages m WHERE m.status = 'pending' AND (? = '' OR m.id = ?) ORDER BY m.at LIMIT ?`, id, id, limit)
	if err != nil {
		return nil, fmt.Errorf("reading pending messages: %w", err)
	}
	defer rows.Close()
	var out []Outgoing
	for rows.Next() {
		var o Outgoing
		if err := rows.Scan(&o.ID, &o.NoticeID, &o.Kind, &o.Text, &o.InReplyTo, &o.User, &o.Attempts, &o.DeliveryID); err != nil {
			return nil, fmt.Errorf("reading pending messages: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// MessageSent records the relay's 201 for an outgoing message and logs
// the disclosure to the platform; a message already marked sent is left
// as it is.
func (s *Store) MessageSent(ctx context.Context, id, relayID, sentAt string, now time.Time) error {
	return s.settle(ctx, id, now, `UPDATE messages SET status = 'sent', relay_id = ?, sent_at = ?, last_error = '',
		attempts = attempts + 1 WHERE id = ? AND status = 'pending'`, []any{relayID, sentAt, id}, ActionMessageSent, "relay_id="+relayID)
}

// MessageRefused records that the relay refused an outgoing message for
// good (it is not retried), and why.
func (s *Store) MessageRefused(ctx context.Context, id, reason string, now time.Time) error {
	return s.settle(ctx, id, now, `UPDATE messages SET status = 'refused', last_error = ?, attempts = attempts + 1
		WHERE id = ? AND status = 'pending'`, []any{reason, id}, ActionMessageRefused, "")
}

func (s *Store) settle(ctx context.Context, id string, now time.Time, q string, args []any, action, detail string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var noticeID, user, kind string
		if err := tx.QueryRowContext(ctx, `SELECT notice_id, user_id, kind FROM messages WHERE id = ?`, id).Scan(&noticeID, &user, &kind); err != nil {
			return fmt.Errorf("message %s: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("message %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // settled before (the page and the sender both sent it)
		}
		return logAccess(ctx, tx, Access{At: now, User: user, Action: action, Notice: noticeID,
			Detail: strings.TrimSpace("kind=" + kind + " id=" + id + " " + detail)})
	})
}

// MessageFailed records a failed attempt to send; the message stays pending.
func (s *Store) MessageFailed(ctx context.Context, id, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE messages SET attempts = attempts + 1, last_error = ? WHERE id = ? AND status = 'pending'`, reason, id)
	if err != nil {
		return fmt.Errorf("message %s: %w", id, err)
	}
	return nil
}

// ThreadVersion is a token that changes whenever notice id's thread does
// (a message arrives, is written, sent or refused), so that a page can
// ask cheaply whether it has the latest.
func (s *Store) ThreadVersion(ctx context.Context, id string) (string, error) {
	var n, sent, refused, attempts int
	var last string
	err := s.db.QueryRowContext(ctx, `SELECT count(*), COALESCE(sum(status = 'sent'), 0), COALESCE(sum(status = 'refused'), 0),
		COALESCE(sum(attempts), 0), COALESCE(max(at), '') FROM messages WHERE notice_id = ?`, id).Scan(&n, &sent, &refused, &attempts, &last)
	if err != nil {
		return "", fmt.Errorf("reading the thread of %s: %w", id, err)
	}
	return fmt.Sprintf("%d.%d.%d.%d.%s", n, sent, refused, attempts, strings.NewReplacer(":", "", "-", "", ".", "").Replace(last)), nil
}
