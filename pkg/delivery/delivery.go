// Package delivery defines what an authority receives: a delivery of a
// notice (or of its withdrawal) with the grounds of that recipient.
package delivery

import (
	"encoding/json"

	"github.com/noticerelay/noticerelay/pkg/jsonbody"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Version is the schema version of stored deliveries.
const Version = 1

// Delivery is one message in an authority's queue.
type Delivery struct {
	V        int    `json:"v"`
	ID       string `json:"id"`
	NoticeID string `json:"notice_id"`
	Type     string `json:"type"` // notice, withdrawal, escalation or message
	Priority string `json:"priority"`
	// Platform and BodySHA256 let the inbox record events without reading
	// the notice.
	Platform   string `json:"platform"`
	BodySHA256 string `json:"body_sha256"`
	// Notice is the Forwarded notice in clear, or, for an authority with
	// an age recipient, empty, and Ciphertext holds it encrypted (armored
	// age) to that recipient alone.
	Notice     json.RawMessage `json:"notice,omitempty"`
	Ciphertext string          `json:"ciphertext,omitempty"`
	// MessageBody is, in a delivery of type message, the message (a
	// message.Message) in clear, or empty when Ciphertext holds it.
	// MessageID and MessageKind stay readable for the events.
	MessageBody json.RawMessage `json:"message,omitempty"`
	MessageID   string          `json:"message_id,omitempty"`
	MessageKind string          `json:"message_kind,omitempty"`
	// AttachmentBody is, in a delivery of type attachment, the file's
	// description (an attachment.Info) in clear, or empty when Ciphertext
	// holds it. AttachmentID (the file's pseudonym) and AttachmentSlot
	// (where its record is) stay readable for the events and the download.
	AttachmentBody json.RawMessage `json:"attachment,omitempty"`
	AttachmentID   string          `json:"attachment_id,omitempty"`
	AttachmentSlot int             `json:"attachment_slot,omitempty"`
}

// Out is a delivery as an authority receives it from the inbox.
type Out struct {
	ID          string `json:"id"`
	NoticeID    string `json:"notice_id"`
	Type        string `json:"type"`
	Priority    string `json:"priority"`
	LeasedUntil string `json:"leased_until,omitempty"`
	// Attempt counts the times the inbox has fetched this delivery for a
	// caller, this one included: above 1, it may have been handed out
	// before (a lease that ended or was released, a failed hand-out).
	Attempt    int             `json:"attempt,omitempty"`
	Notice     json.RawMessage `json:"notice,omitempty"`
	Message    json.RawMessage `json:"message,omitempty"`
	Attachment json.RawMessage `json:"attachment,omitempty"`
	Ciphertext string          `json:"ciphertext,omitempty"`
}

// CoRecipient is another authority that received the same notice.
type CoRecipient struct {
	Authority string `json:"authority"`
	Country   string `json:"country"`
}

// Forwarded is the notice as an authority sees it: the submitted notice
// plus who sent it, when, why this authority receives it, and who else does.
type Forwarded struct {
	ID         string `json:"id"`
	Platform   string `json:"platform"`
	ReceivedAt string `json:"received_at"`
	*notice.Notice
	// FollowUpOf and Supersedes are, for a follow-up or a correction, the
	// id of the earlier notice it follows up on or supersedes (contract
	// section 9). They hide the notice's fields of the same name, which
	// hold the platform's references.
	FollowUpOf   string                `json:"follow_up_of,omitempty"`
	Supersedes   string                `json:"supersedes,omitempty"`
	Grounds      []jurisdiction.Ground `json:"grounds"`
	CoRecipients []CoRecipient         `json:"co_recipients"`
	Withdrawal   *Withdrawal           `json:"withdrawal,omitempty"`
	Escalation   *Escalation           `json:"escalation,omitempty"`
}

// Withdrawal says that and why the platform withdrew the notice.
type Withdrawal struct {
	Reason      string `json:"reason"`
	RequestedAt string `json:"requested_at"`
}

// Decode parses a stored delivery, refusing unknown versions.
func Decode(data []byte) (*Delivery, error) {
	return jsonbody.DecodeStored(data, "delivery", func(v *Delivery) int { return v.V }, Version)
}

// CoRecipients lists the recipients of d other than except: who else
// receives the notice (never nil, so that it encodes as a list).
func CoRecipients(d *jurisdiction.Decision, except string) []CoRecipient {
	out := []CoRecipient{}
	if d == nil {
		return out
	}
	for _, r := range d.Recipients {
		if r.Authority != except {
			out = append(out, CoRecipient{Authority: r.Authority, Country: r.Country})
		}
	}
	return out
}
