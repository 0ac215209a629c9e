package station

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/noticerelay/noticerelay/pkg/delivery"
)

// ErrNotFound is returned for a notice the station does not have.
var ErrNotFound = errors.New("no such notice")

// States of a notice's triage, in the order they are usually taken.
var States = []string{"new", "in_progress", "forwarded", "closed"}

// Filter narrows the inbox; empty fields do not filter.
type Filter struct {
	State    string
	Category string
	Priority string // urgent or normal
}

// Row is a notice as the inbox lists it.
type Row struct {
	ID         string
	Reference  string
	Platform   string
	Category   string
	Priority   string
	Countries  []string
	ReceivedAt time.Time
	State      string
	Assignee   string
	Opened     bool
	Withdrawn  bool
}

// Urgent reports whether the notice declares an imminent threat.
func (r Row) Urgent() bool { return r.Priority == "urgent" }

// Inbox lists notices: open urgent ones first, then newest first.
func (s *Store) Inbox(ctx context.Context, f Filter, limit int) ([]Row, error) {
	q := `SELECT id, reference, platform, category, priority, countries, received_at, state, assignee,
		opened_at IS NOT NULL, withdrawn_at IS NOT NULL FROM notices WHERE 1=1`
	var args []any
	if f.State != "" {
		q += " AND state = ?"
		args = append(args, f.State)
	}
	if f.Category != "" {
		q += " AND category = ?"
		args = append(args, f.Category)
	}
	if f.Priority != "" {
		q += " AND priority = ?"
		args = append(args, f.Priority)
	}
	q += ` ORDER BY (priority = 'urgent' AND state != 'closed' AND withdrawn_at IS NULL) DESC, received_at DESC, id LIMIT ?`
	args = append(args, limit)
	var out []Row
	err := s.each(ctx, q, func(rows *sql.Rows) error {
		var r Row
		var countries, received string
		if err := rows.Scan(&r.ID, &r.Reference, &r.Platform, &r.Category, &r.Priority, &countries, &received,
			&r.State, &r.Assignee, &r.Opened, &r.Withdrawn); err != nil {
			return err
		}
		if countries != "" {
			r.Countries = strings.Split(countries, ",")
		}
		r.ReceivedAt = parseTS(received)
		out = append(out, r)
		return nil
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("listing notices: %w", err)
	}
	return out, nil
}

// UrgentUnopened counts the urgent notices no analyst has opened yet.
func (s *Store) UrgentUnopened(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM notices WHERE priority = 'urgent' AND opened_at IS NULL`).Scan(&n)
	return n, err
}

// Categories lists the categories of the stored notices.
func (s *Store) Categories(ctx context.Context) ([]string, error) {
	return s.strings(ctx, `SELECT DISTINCT category FROM notices WHERE category != '' ORDER BY category`)
}

// Notice is everything the station holds about one notice.
type Notice struct {
	Row
	Forwarded        Forwarded
	Body             json.RawMessage
	Complete         bool
	StoredAt         time.Time
	OpenedAt         time.Time
	OpenedBy         string
	WithdrawnAt      time.Time
	WithdrawalReason string
	Escalation       *delivery.Escalation
	Triage           Triage
	Notes            []Note
	Attachments      []Attachment
	Messages         []Message
	// FollowUps are the notices that follow this one or supersede it.
	FollowUps []Row
	// Refs are the references of the notices this one follows or
	// supersedes, by id, where the station has them.
	Refs map[string]string
	// Deliveries are the ids of the deliveries that brought it.
	Deliveries []string
}

// Triage is the station's own handling of a notice; it never leaves the
// station.
type Triage struct {
	State       string `json:"state"`
	Destination string `json:"destination,omitempty"` // the local unit it was forwarded to
	Outcome     string `json:"outcome,omitempty"`
	Assignee    string `json:"assignee,omitempty"`
}

// Note is an analyst's internal note on a notice.
type Note struct {
	User string    `json:"user"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Attachment is an evidence file of a notice (contract section 7).
type Attachment struct {
	DeliveryID string `json:"-"`
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	MediaType  string `json:"media_type"`
	Filename   string `json:"filename"`
	Relevance  string `json:"relevance"`
	Downloaded bool   `json:"-"`
	// Withdrawn: the notice was withdrawn before the file was downloaded,
	// and the relay no longer hands it out.
	Withdrawn bool `json:"-"`
}

// Notice returns the notice with id and everything about it.
func (s *Store) Notice(ctx context.Context, id string) (*Notice, error) {
	n := &Notice{}
	var countries, received, stored string
	var opened, openedBy, withdrawn, reason sql.NullString
	var escalation []byte
	err := s.db.QueryRowContext(ctx, `SELECT id, reference, platform, category, priority, countries, received_at, stored_at,
			body, complete, escalation, withdrawn_at, withdrawal_reason, opened_at, opened_by, state, destination, outcome, assignee
		FROM notices WHERE id = ?`, id).Scan(&n.ID, &n.Reference, &n.Platform, &n.Category, &n.Priority, &countries,
		&received, &stored, &n.Body, &n.Complete, &escalation, &withdrawn, &reason, &opened, &openedBy,
		&n.Triage.State, &n.Triage.Destination, &n.Triage.Outcome, &n.Triage.Assignee)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading notice %s: %w", id, err)
	}
	if countries != "" {
		n.Countries = strings.Split(countries, ",")
	}
	n.ReceivedAt, n.StoredAt = parseTS(received), parseTS(stored)
	n.State, n.Assignee = n.Triage.State, n.Triage.Assignee
	n.Opened, n.OpenedAt, n.OpenedBy = opened.Valid, parseTS(opened.String), openedBy.String
	n.Withdrawn, n.WithdrawnAt, n.WithdrawalReason = withdrawn.Valid, parseTS(withdrawn.String), reason.String
	if err := json.Unmarshal(n.Body, &n.Forwarded); err != nil {
		return nil, fmt.Errorf("reading notice %s: %w", id, err)
	}
	if len(escalation) > 0 {
		n.Escalation = &delivery.Escalation{}
		_ = json.Unmarshal(escalation, n.Escalation)
	}
	if err := s.details(ctx, n); err != nil {
		return nil, fmt.Errorf("reading notice %s: %w", id, err)
	}
	return n, nil
}

func (s *Store) details(ctx context.Context, n *Notice) error {
	each := func(q string, scan func(*sql.Rows) error, args ...any) error { return s.each(ctx, q, scan, args...) }
	return errors.Join(
		each(`SELECT user_id, text, created_at FROM notes WHERE notice_id = ? ORDER BY id`, func(r *sql.Rows) error {
			var nt Note
			var at string
			err := r.Scan(&nt.User, &nt.Text, &at)
			nt.At = parseTS(at)
			n.Notes = append(n.Notes, nt)
			return err
		}, n.ID),
		each(`SELECT delivery_id, sha256, size, media_type, filename, relevance, data IS NOT NULL, withdrawn_at IS NOT NULL
			FROM attachments WHERE notice_id = ? ORDER BY stored_at, delivery_id`, func(r *sql.Rows) error {
			var a Attachment
			err := r.Scan(&a.DeliveryID, &a.SHA256, &a.Size, &a.MediaType, &a.Filename, &a.Relevance, &a.Downloaded, &a.Withdrawn)
			n.Attachments = append(n.Attachments, a)
			return err
		}, n.ID),
		s.thread(ctx, n),
		func() (err error) {
			n.Deliveries, err = s.strings(ctx, `SELECT id FROM deliveries WHERE notice_id = ? ORDER BY stored_at`, n.ID)
			return err
		}(),
		each(`SELECT id, reference FROM notices WHERE id IN (?, ?)`, func(r *sql.Rows) error {
			var id, ref string
			err := r.Scan(&id, &ref)
			if n.Refs == nil {
				n.Refs = map[string]string{}
			}
			n.Refs[id] = ref
			return err
		}, n.Forwarded.FollowUpOf, n.Forwarded.Supersedes),
		each(`SELECT id, reference, category, priority, received_at, state FROM notices
			WHERE follow_up_of = ? OR supersedes = ? OR follow_up_of = ? OR supersedes = ? ORDER BY received_at`, func(r *sql.Rows) error {
			var f Row
			var at string
			err := r.Scan(&f.ID, &f.Reference, &f.Category, &f.Priority, &at, &f.State)
			f.ReceivedAt = parseTS(at)
			n.FollowUps = append(n.FollowUps, f)
			return err
		}, n.ID, n.ID, n.Reference, n.Reference),
	)
}

// MarkOpened records that user opened the notice (the first opening makes
// it read) and logs the view, in one transaction.
func (s *Store) MarkOpened(ctx context.Context, id, user string, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notices SET opened_at = COALESCE(opened_at, ?), opened_by = COALESCE(opened_by, ?) WHERE id = ?`,
			ts(now), user, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return logAccess(ctx, tx, Access{At: now, User: user, Action: ActionView, Notice: id})
	})
}

// TriageError says what is wrong with a triage change, naming the field.
type TriageError struct{ Field, Message string }

func (e *TriageError) Error() string { return e.Field + ": " + e.Message }

// SetTriage changes a notice's state, destination, outcome and assignee,
// and logs the change. A forwarded notice needs a destination, a closed
// one an outcome; assignees must be among users.
func (s *Store) SetTriage(ctx context.Context, id, user string, t Triage, users []string, now time.Time) error {
	t.Destination, t.Outcome = strings.TrimSpace(t.Destination), strings.TrimSpace(t.Outcome)
	switch {
	case !slices.Contains(States, t.State):
		return &TriageError{"state", "must be one of " + strings.Join(States, ", ")}
	case t.State == "forwarded" && t.Destination == "":
		return &TriageError{"destination", "say which unit the notice was forwarded to"}
	case t.State == "closed" && t.Outcome == "":
		return &TriageError{"outcome", "say how the notice was closed"}
	case t.Assignee != "" && !slices.Contains(users, t.Assignee):
		return &TriageError{"assignee", "not a user of this station"}
	case len(t.Destination) > 500 || len(t.Outcome) > 2000:
		return &TriageError{"destination", "too long"}
	}
	if t.State != "forwarded" {
		t.Destination = ""
	}
	if t.State != "closed" {
		t.Outcome = ""
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notices SET state = ?, destination = ?, outcome = ?, assignee = ?, updated_at = ? WHERE id = ?`,
			t.State, t.Destination, t.Outcome, t.Assignee, ts(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		detail := "state=" + t.State
		if t.Assignee != "" {
			detail += " assignee=" + t.Assignee
		}
		return logAccess(ctx, tx, Access{At: now, User: user, Action: ActionTriage, Notice: id, Detail: detail})
	})
}

// AddNote adds an internal note to a notice and logs it.
func (s *Store) AddNote(ctx context.Context, id, user, text string, now time.Time) error {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > 10000 {
		return &TriageError{"note", "write 1 to 10000 characters"}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notes (notice_id, user_id, text, created_at) VALUES (?, ?, ?, ?)`,
			id, user, text, ts(now)); err != nil {
			return err
		}
		return logAccess(ctx, tx, Access{At: now, User: user, Action: ActionNote, Notice: id})
	})
}
