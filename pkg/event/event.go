// Package event defines the lifecycle events of a notice: what each step
// of the relay records. An event holds no personal data: the notice's keyed
// pseudonym, types, times, actors, countries, reason codes and the SHA-256
// of the notice body. Events are stored as RFC 8785 canonical JSON, byte for
// byte the leaves of the audit log.
package event

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/noticerelay/noticerelay/pkg/jsonbody"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Version is the schema version of events this code writes.
const Version = "1"

// Type is what happened.
type Type string

// Event types.
const (
	Accepted     Type = "accepted"
	Rejected     Type = "rejected"
	Decided      Type = "decided"
	Queued       Type = "queued"
	Delivered    Type = "delivered"
	Acknowledged Type = "acknowledged"
	Withdrawn    Type = "withdrawn"
	// FollowedUp and Superseded are events of an earlier notice: a later
	// notice (By) follows it up or supersedes it (contract section 9).
	FollowedUp Type = "followed_up"
	Superseded Type = "superseded"
)

// Delivery kinds.
const (
	KindNotice     = "notice"
	KindWithdrawal = "withdrawal"
)

// Event is one step in the life of a notice.
type Event struct {
	V    string `json:"v"`
	Type Type   `json:"type"`
	// Notice is the keyed pseudonym of the notice id (Pseudonyms.Notice);
	// for a rejected submission, a random id of the rejection.
	Notice     string    `json:"notice"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	Platform   string    `json:"platform"`
	BodySHA256 string    `json:"body_sha256,omitempty"`
	Priority   string    `json:"priority,omitempty"`
	// Category is the notice's category code (contract section 3), on
	// accepted events: a code from a fixed list, never free text.
	Category string `json:"category,omitempty"`
	// Recipient, Delivery and Kind name the delivery of per-recipient events.
	Recipient string `json:"recipient,omitempty"`
	Delivery  string `json:"delivery,omitempty"`
	Kind      string `json:"kind,omitempty"`
	// MessageID, Sender and MessageKind describe a message between an
	// authority and a platform (message_sent, message_delivered, and the
	// acknowledged event of a message delivery): its id, who sent it (an
	// authority id or "platform"; Recipient is the other side) and its
	// kind code. Never its text.
	MessageID   string `json:"message,omitempty"`
	Sender      string `json:"sender,omitempty"`
	MessageKind string `json:"message_kind,omitempty"`
	// Attachment is the pseudonym of an evidence file
	// (Pseudonyms.Attachment), on its attachment_added event and on every
	// event of its deliveries.
	Attachment string `json:"attachment,omitempty"`
	// By is, on followed_up and superseded events, the pseudonym of the
	// later notice that follows up on or supersedes this one.
	By string `json:"by,omitempty"`
	// FollowUpOf and Supersedes are, on the decided event of a follow-up
	// or correction, the pseudonyms of the earlier notices it names: what
	// a stage needs to hand a recipient the earlier notice's files.
	FollowUpOf string `json:"follow_up_of,omitempty"`
	Supersedes string `json:"supersedes,omitempty"`
	// Decision holds the recipients and grounds of a decided event.
	Decision *jurisdiction.Decision `json:"decision,omitempty"`
	// Reasons holds the reason codes of a rejected event.
	Reasons []string `json:"reasons,omitempty"`
	// Count is how many submissions a rejected event records: rejections
	// are counted per platform over a window (audit.rejection_window) and
	// recorded as one event whose time is the window's start, with the
	// count of each reason code in ReasonCounts. Absent (events written
	// before the counting): one.
	Count        int            `json:"count,omitempty"`
	ReasonCounts map[string]int `json:"reason_counts,omitempty"`
}

// Submissions is how many rejected submissions e records: Count, or one for
// an event that has none.
func (e *Event) Submissions() int {
	if e.Type != Rejected {
		return 0
	}
	return max(1, e.Count)
}

// Subject is where e is stored. Each event has its own subject, and the
// events stream keeps one message per subject: an event exists at most once.
func (e *Event) Subject() string {
	if e.MessageID != "" {
		// Many messages per (notice, recipient): the message id tells them
		// apart.
		return stream.EventSubject(e.Notice, string(e.Type), e.Recipient, e.Kind, e.MessageID)
	}
	if e.Attachment != "" {
		// Many files per notice: the file's pseudonym tells them apart.
		if e.Recipient != "" {
			return stream.EventSubject(e.Notice, string(e.Type), e.Recipient, e.Kind, e.Attachment)
		}
		return stream.EventSubject(e.Notice, string(e.Type), e.Attachment)
	}
	if e.By != "" {
		// A notice can be followed up (or superseded) by several.
		return stream.EventSubject(e.Notice, string(e.Type), e.By)
	}
	if e.Recipient != "" {
		return stream.EventSubject(e.Notice, string(e.Type), e.Recipient, e.Kind)
	}
	return stream.EventSubject(e.Notice, string(e.Type))
}

// SubjectOf is the subject of the event of type t about notice (its
// pseudonym); recipient and kind name a per-recipient event ("" for one
// about the notice as a whole).
func SubjectOf(notice string, t Type, recipient, kind string) string {
	e := Event{Notice: notice, Type: t, Recipient: recipient, Kind: kind}
	return e.Subject()
}

// Filter matches the events of type t about every notice, for every
// recipient, of kind.
func Filter(t Type, kind string) string { return SubjectOf("*", t, "*", kind) }

// Message returns e as a message to store, with a deterministic id. The
// data is RFC 8785 canonical JSON.
func (e *Event) Message() (stream.Message, error) {
	e.V = Version
	e.Time = e.Time.UTC()
	data, err := json.Marshal(e)
	if err == nil {
		data, err = jcs.Transform(data)
	}
	if err != nil {
		return stream.Message{}, fmt.Errorf("encoding %s event: %w", e.Type, err)
	}
	subj := e.Subject()
	return stream.Message{Subject: subj, ID: subj, Data: data}, nil
}

// Decode parses a stored event, refusing versions this code does not know.
func Decode(data []byte) (*Event, error) {
	return jsonbody.DecodeStored(data, "event", func(v *Event) string { return v.V }, Version)
}
