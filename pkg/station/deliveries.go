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
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Received is one delivery as the station took it from the relay, its
// body in clear (decrypted when it was sealed).
type Received struct {
	ID       string
	NoticeID string
	Type     string
	Priority string
	Sealed   bool
	Body     json.RawMessage
}

// Forwarded is a notice as the station reads it: the relay's forwarded
// notice plus the links to earlier notices that a follow-up carries.
type Forwarded struct {
	delivery.Forwarded
	FollowUpOf string `json:"follow_up_of,omitempty"`
	Supersedes string `json:"supersedes,omitempty"`
}

// AttachmentDelivery is the body of a delivery of type attachment
// (contract section 7).
type AttachmentDelivery struct {
	NoticeID   string     `json:"notice_id"`
	Attachment Attachment `json:"attachment"`
}

// Store writes one delivery and everything it means (a new notice, a
// withdrawal, an attachment, a message) in one transaction. A delivery id
// already stored is a no-op: stored reports whether it was new. Only after
// Store returns nil may the delivery be acknowledged.
func (s *Store) Store(ctx context.Context, r Received, now time.Time) (stored bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, notice_id, type, priority, sealed, body, stored_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.NoticeID, r.Type, r.Priority, r.Sealed, []byte(r.Body), ts(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // stored before: the acknowledgement was lost
		}
		stored = true
		switch r.Type {
		case "notice", "withdrawal", "escalation": // an escalation carries the whole notice
			return storeNotice(ctx, tx, r, now)
		case "attachment":
			// The body is the file's description; an older form wrapped it.
			var a AttachmentDelivery
			if err := json.Unmarshal(r.Body, &a.Attachment); err != nil {
				return fmt.Errorf("attachment delivery: %w", err)
			}
			if a.Attachment.SHA256 == "" {
				if err := json.Unmarshal(r.Body, &a); err != nil {
					return fmt.Errorf("attachment delivery: %w", err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO attachments (delivery_id, notice_id, sha256, size, media_type, filename, relevance, stored_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.NoticeID, a.Attachment.SHA256, a.Attachment.Size,
				a.Attachment.MediaType, a.Attachment.Filename, a.Attachment.Relevance, ts(now))
			return err
		case "message": // the body is the message itself (contract section 8)
			var m Message
			if err := json.Unmarshal(r.Body, &m); err != nil {
				return fmt.Errorf("message delivery: %w", err)
			}
			if m.ID == "" {
				m.ID = r.ID
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO messages (id, notice_id, direction, kind, text, in_reply_to, status, at)
				VALUES (?, ?, 'in', ?, ?, ?, 'received', ?) ON CONFLICT (id) DO NOTHING`,
				m.ID, r.NoticeID, m.Kind, m.Text, m.InReplyTo, orNow(m.SentAt, now))
			return err
		}
		// A kind this station does not know yet stays stored as received.
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("storing delivery %s: %w", r.ID, err)
	}
	return stored, nil
}

// storeNotice creates or completes the notice of a notice or withdrawal
// delivery. A withdrawal may come first (its notice's delivery was still
// leased when the station crashed): it creates the notice from the copy
// it carries, which the notice delivery then completes.
func storeNotice(ctx context.Context, tx *sql.Tx, r Received, now time.Time) error {
	var f Forwarded
	if err := json.Unmarshal(r.Body, &f); err != nil {
		return fmt.Errorf("%s delivery: %w", r.Type, err)
	}
	if f.Notice == nil {
		f.Notice = &notice.Notice{}
	}
	if f.ID == "" {
		f.ID = r.NoticeID
	}
	if f.ID != r.NoticeID {
		return fmt.Errorf("%s delivery: notice id %q in a delivery of notice %q", r.Type, f.ID, r.NoticeID)
	}
	received := now
	if t, err := time.Parse(time.RFC3339Nano, f.ReceivedAt); err == nil {
		received = t
	}
	var escalation []byte
	if f.Escalation != nil {
		escalation, _ = json.Marshal(f.Escalation)
	}
	complete := r.Type != "withdrawal"
	_, err := tx.ExecContext(ctx, `INSERT INTO notices (id, reference, platform, category, priority, countries,
			received_at, stored_at, body, complete, follow_up_of, supersedes, escalation, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), NULLIF(?, ''), ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			body = CASE WHEN notices.complete = 0 AND excluded.complete = 1 THEN excluded.body ELSE notices.body END,
			category = CASE WHEN notices.complete = 0 AND excluded.complete = 1 THEN excluded.category ELSE notices.category END,
			countries = CASE WHEN notices.complete = 0 AND excluded.complete = 1 THEN excluded.countries ELSE notices.countries END,
			complete = MAX(notices.complete, excluded.complete),
			escalation = COALESCE(excluded.escalation, notices.escalation)`,
		f.ID, f.Reference, f.Platform, f.Category, r.Priority, strings.Join(Countries(f.Notice), ","),
		ts(received), ts(now), []byte(r.Body), complete, f.FollowUpOf, f.Supersedes, escalation, ts(now))
	if err != nil {
		return err
	}
	if r.Type == "withdrawal" && f.Withdrawal != nil {
		_, err = tx.ExecContext(ctx, `UPDATE notices SET withdrawn_at = ?, withdrawal_reason = ?, updated_at = ? WHERE id = ?`,
			orNow(f.Withdrawal.RequestedAt, now), f.Withdrawal.Reason, ts(now), f.ID)
	}
	return err
}

// Countries returns the Member States a notice names (places, suspects,
// victims), sorted, each once.
func Countries(n *notice.Notice) []string {
	var out []string
	add := func(cc string) {
		if cc != "" && !slices.Contains(out, cc) {
			out = append(out, cc)
		}
	}
	for _, l := range n.Locations {
		add(l.Country)
	}
	for _, p := range n.Suspects {
		add(p.Country)
	}
	for _, p := range n.Victims {
		add(p.Country)
	}
	slices.Sort(out)
	return out
}

// orNow is an RFC 3339 time stamp in the store's form, or now's.
func orNow(s string, now time.Time) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return ts(t)
	}
	return ts(now)
}

// RelayStatus is what the station knows of its link to the relay.
type RelayStatus struct {
	// UnreachableSince is zero while the relay answers.
	UnreachableSince time.Time
	LastContact      time.Time
	LastError        string
	// Authority is whom the relay says the station receives for (empty
	// until the relay first answered).
	Authority Authority
}

// Authority is the authority a station receives for, as the relay names it.
type Authority struct {
	ID, Name, Country string
}

// ErrOtherAuthority is SetAuthority's answer when the relay names another
// authority than the one whose notices the database holds.
var ErrOtherAuthority = errors.New("the relay names another authority than the one this database receives for")

// SetAuthority records the authority the relay names for the station's
// token. The first one stays: a token of another authority (a
// configuration pointing two authorities at one database) is refused, so
// that their notices never mix.
func (s *Store) SetAuthority(ctx context.Context, a Authority) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var id string
		if err := tx.QueryRowContext(ctx, `SELECT authority_id FROM relay WHERE id = 1`).Scan(&id); err != nil {
			return err
		}
		if id != "" && id != a.ID {
			return fmt.Errorf("%w: the token is %s's, the database %s's", ErrOtherAuthority, a.ID, id)
		}
		_, err := tx.ExecContext(ctx, `UPDATE relay SET authority_id = ?, authority_name = ?, authority_country = ? WHERE id = 1`,
			a.ID, a.Name, a.Country)
		return err
	})
}

// RelayReached records a successful exchange with the relay, and the
// trouble with its deliveries, if any ("" for none).
func (s *Store) RelayReached(ctx context.Context, now time.Time, problem string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE relay SET unreachable_since = NULL, last_contact = ?, last_error = ? WHERE id = 1`, ts(now), problem)
	return err
}

// RelayFailed records a failed exchange; the first failure after a
// success sets since when the relay is unreachable.
func (s *Store) RelayFailed(ctx context.Context, now time.Time, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE relay SET unreachable_since = COALESCE(unreachable_since, ?), last_error = ? WHERE id = 1`,
		ts(now), reason)
	return err
}

// Relay returns the state of the link to the relay.
func (s *Store) Relay(ctx context.Context) (RelayStatus, error) {
	var since, last sql.NullString
	var st RelayStatus
	err := s.db.QueryRowContext(ctx, `SELECT unreachable_since, last_contact, last_error, authority_id, authority_name, authority_country
		FROM relay WHERE id = 1`).Scan(&since, &last, &st.LastError, &st.Authority.ID, &st.Authority.Name, &st.Authority.Country)
	if since.Valid {
		st.UnreachableSince = parseTS(since.String)
	}
	if last.Valid {
		st.LastContact = parseTS(last.String)
	}
	return st, err
}

// Sealed reports whether the delivery with id arrived encrypted.
func (s *Store) Sealed(ctx context.Context, id string) (bool, error) {
	var sealed bool
	err := s.db.QueryRowContext(ctx, `SELECT sealed FROM deliveries WHERE id = ?`, id).Scan(&sealed)
	return sealed, err
}

// PendingAttachments lists the attachment deliveries whose file the
// station has not downloaded yet.
func (s *Store) PendingAttachments(ctx context.Context, limit int) ([]string, error) {
	ids, err := s.strings(ctx, `SELECT delivery_id FROM attachments WHERE data IS NULL AND withdrawn_at IS NULL ORDER BY stored_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading attachments: %w", err)
	}
	return ids, nil
}

// KeepAttachment stores the file of attachment delivery id as received
// (sealed: still encrypted to the authority).
func (s *Store) KeepAttachment(ctx context.Context, id string, data []byte, sealed bool, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE attachments SET data = ?, sealed = ?, fetched_at = ?, fetch_error = '' WHERE delivery_id = ?`,
		data, sealed, ts(now), id)
	if err != nil {
		return fmt.Errorf("keeping attachment %s: %w", id, err)
	}
	return nil
}

// AttachmentWithdrawn records that the relay no longer hands out the file
// of delivery id: its notice was withdrawn. It is not asked for again.
func (s *Store) AttachmentWithdrawn(ctx context.Context, id string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE attachments SET withdrawn_at = ?, fetch_error = '' WHERE delivery_id = ? AND data IS NULL`,
		ts(now), id)
	if err != nil {
		return fmt.Errorf("recording attachment %s as withdrawn: %w", id, err)
	}
	return nil
}

// AttachmentFailed records why the file of delivery id could not be downloaded.
func (s *Store) AttachmentFailed(ctx context.Context, id, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE attachments SET fetch_error = ?, attempts = attempts + 1 WHERE delivery_id = ?`, reason, id)
	return err
}

// AttachmentFile returns the description and the kept bytes (nil until
// downloaded) of attachment delivery id of notice noticeID.
func (s *Store) AttachmentFile(ctx context.Context, noticeID, id string) (Attachment, []byte, bool, error) {
	var a Attachment
	var data []byte
	var sealed bool
	err := s.db.QueryRowContext(ctx, `SELECT delivery_id, sha256, size, media_type, filename, relevance, data, sealed FROM attachments
		WHERE notice_id = ? AND delivery_id = ?`, noticeID, id).Scan(&a.DeliveryID, &a.SHA256, &a.Size, &a.MediaType, &a.Filename,
		&a.Relevance, &data, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil, false, ErrNotFound
	}
	a.Downloaded = data != nil
	return a, data, sealed, err
}

// AttachmentNotice returns the notice of attachment delivery id.
func (s *Store) AttachmentNotice(ctx context.Context, id string) (string, error) {
	var n string
	err := s.db.QueryRowContext(ctx, `SELECT notice_id FROM attachments WHERE delivery_id = ?`, id).Scan(&n)
	return n, err
}
