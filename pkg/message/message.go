// Package message defines the messages between an authority and the
// platform that sent a notice (contract section 8): what each side may
// send, how a message is stored, and how it is shown. A message is
// personal data: it lives in NR_MESSAGES and in deliveries, both expiring
// with retention.notices, and never in an event or a log line.
package message

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/jsonbody"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Platform names the platform as sender ("from") or recipient ("to") of a
// message; the other side is an authority, named by its id. No authority
// may have this id (pkg/config).
const Platform = "platform"

// Kinds an authority may give its message.
var Kinds = []string{"request_information", "preservation_request", "feedback", "other"}

// KindResponse is the kind of every message a platform sends: its
// answer, or what it adds, in an authority's thread.
const KindResponse = "response"

// MaxText is the longest text, in characters.
const MaxText = 10000

// MaxIdempotencyKey is the longest Idempotency-Key header accepted.
const MaxIdempotencyKey = 200

// Service is the service that takes messages, the actor of their
// message_sent events.
const Service = "messages"

// Version is the schema version of stored messages.
const Version = 1

// AuthorityRequest is the body of POST /v1/inbox/{delivery id}/messages,
// as the relay reads it and the inbox client (pkg/inboxclient) sends it.
type AuthorityRequest struct {
	Kind      string `json:"kind"`
	Text      string `json:"text"`
	InReplyTo string `json:"in_reply_to,omitempty"`
}

// PlatformRequest is the body of POST /v1/notices/{id}/messages.
type PlatformRequest struct {
	To        string `json:"to"`
	Text      string `json:"text"`
	InReplyTo string `json:"in_reply_to,omitempty"`
}

// Sent is the relay's answer to a stored message (201).
type Sent struct {
	ID     string `json:"id"`
	SentAt string `json:"sent_at"`
}

// Check lists every problem of r.
func (r *AuthorityRequest) Check() []httpapi.FieldError {
	var errs []httpapi.FieldError
	if !slices.Contains(Kinds, r.Kind) {
		errs = append(errs, httpapi.FieldError{Field: "kind", Message: "must be one of " + strings.Join(Kinds, ", ")})
	}
	return append(append(errs, checkText(r.Text)...), checkReply(r.InReplyTo)...)
}

// Check lists every problem of r.
func (r *PlatformRequest) Check() []httpapi.FieldError {
	var errs []httpapi.FieldError
	if r.To == "" {
		errs = append(errs, httpapi.FieldError{Field: "to", Message: "is required: the id of an authority that received the notice"})
	}
	return append(append(errs, checkText(r.Text)...), checkReply(r.InReplyTo)...)
}

func checkText(text string) []httpapi.FieldError {
	n := utf8.RuneCountInString(text)
	if !utf8.ValidString(text) || strings.TrimSpace(text) == "" || n > MaxText {
		return []httpapi.FieldError{{Field: "text", Message: fmt.Sprintf("is required: 1 to %d characters", MaxText)}}
	}
	return nil
}

func checkReply(id string) []httpapi.FieldError {
	if id != "" && !notice.ValidID(id) {
		return []httpapi.FieldError{{Field: "in_reply_to", Message: "must be the id of a message (a UUID)"}}
	}
	return nil
}

// CheckIdempotencyKey returns the problem with an Idempotency-Key header
// value, if any: 1 to MaxIdempotencyKey visible ASCII characters.
func CheckIdempotencyKey(key string) []httpapi.FieldError {
	ok := key != "" && len(key) <= MaxIdempotencyKey
	for i := 0; ok && i < len(key); i++ {
		ok = key[i] > ' ' && key[i] < 0x7f
	}
	if ok {
		return nil
	}
	return []httpapi.FieldError{{Field: "Idempotency-Key",
		Message: fmt.Sprintf("must be 1 to %d visible ASCII characters", MaxIdempotencyKey)}}
}

// Record is a stored message: the thread it belongs to, its parties and
// its content.
type Record struct {
	V        int    `json:"v"`
	ID       string `json:"id"`
	NoticeID string `json:"notice_id"`
	// Platform is the platform that sent the notice; Authority the other
	// side of the thread.
	Platform  string `json:"platform"`
	Authority string `json:"authority"`
	// From and To are Platform ("platform") or the authority's id.
	From      string `json:"from"`
	To        string `json:"to"`
	Kind      string `json:"kind"`
	Text      string `json:"text"`
	InReplyTo string `json:"in_reply_to,omitempty"`
	SentAt    string `json:"sent_at"`
	// Priority is the notice's: a message about an urgent notice waits
	// in the authority's urgent queue.
	Priority string `json:"priority"`
}

// Message is a message as its parties see it; in_reply_to is null when
// it answers none.
type Message struct {
	ID        string  `json:"id"`
	From      string  `json:"from"`
	To        string  `json:"to"`
	Kind      string  `json:"kind"`
	Text      string  `json:"text"`
	SentAt    string  `json:"sent_at"`
	InReplyTo *string `json:"in_reply_to"`
}

// Out is r as its parties see it.
func (r *Record) Out() Message {
	m := Message{ID: r.ID, From: r.From, To: r.To, Kind: r.Kind, Text: r.Text, SentAt: r.SentAt}
	if r.InReplyTo != "" {
		m.InReplyTo = &r.InReplyTo
	}
	return m
}

// Same reports whether r says what o says: a retried POST under the same
// Idempotency-Key must send the same message.
func (r *Record) Same(o *Record) bool {
	return r.From == o.From && r.To == o.To && r.Kind == o.Kind && r.Text == o.Text && r.InReplyTo == o.InReplyTo
}

// ToPlatform reports whether the platform is r's recipient.
func (r *Record) ToPlatform() bool { return r.To == Platform }

// Decode parses a stored message, refusing unknown versions.
func Decode(data []byte) (*Record, error) {
	return jsonbody.DecodeStored(data, "message", func(v *Record) int { return v.V }, Version)
}

// DeliveryID is the one delivery id of r for its recipient.
func (r *Record) DeliveryID() string { return notice.MessageDeliveryID(r.NoticeID, r.To, r.ID) }

// Event is the event of type t about r: its kind, sender and recipient,
// never its text.
func (r *Record) Event(ps *event.Pseudonyms, t event.Type, at time.Time) event.Event {
	return event.Event{Type: t, Notice: ps.Notice(r.NoticeID), Time: at, Actor: Service, Platform: r.Platform,
		Priority: r.Priority, Recipient: r.To, Sender: r.From, Kind: event.KindMessage, Delivery: r.DeliveryID(),
		MessageID: r.ID, MessageKind: r.Kind}
}

// Delivery is r as a delivery of type message to its recipient, not yet
// sealed.
func (r *Record) Delivery() (*delivery.Delivery, error) {
	body, err := json.Marshal(r.Out())
	if err != nil {
		return nil, fmt.Errorf("encoding message %s: %w", r.ID, err)
	}
	return &delivery.Delivery{V: delivery.Version, ID: r.DeliveryID(), NoticeID: r.NoticeID, Type: event.KindMessage,
		Priority: r.Priority, Platform: r.Platform, MessageBody: body, MessageID: r.ID, MessageKind: r.Kind}, nil
}
