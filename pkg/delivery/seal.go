package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Sealer encrypts deliveries to the authorities that have an age
// recipient, before they enter a queue: from then on neither NATS, its
// operators, the relay's logs nor a dead-letter copy can read them.
type Sealer struct {
	recipients map[string]age.Recipient
}

// NewSealer returns the sealer of a configuration's authorities.
func NewSealer(c *config.Config) (*Sealer, error) {
	s := &Sealer{recipients: map[string]age.Recipient{}}
	for _, a := range c.Authorities {
		if a.AgeRecipient == "" {
			continue
		}
		r, err := age.ParseX25519Recipient(a.AgeRecipient)
		if err != nil {
			return nil, fmt.Errorf("authority %s: age_recipient: %w", a.ID, err)
		}
		s.recipients[a.ID] = r
	}
	return s, nil
}

// Seal encrypts d's notice (or, in a message delivery, its message) to
// authority's recipient, if it has one: the plaintext moves into
// Ciphertext (armored age) and Notice or MessageBody is cleared. The
// delivery's own fields (ids, type, priority, platform, body hash, message
// kind) stay readable: the relay needs them to record events and order the
// queue, and they hold no personal data.
func (s *Sealer) Seal(authority string, d *Delivery) error {
	r, ok := s.recipients[authority]
	plain := &d.Notice
	if len(d.MessageBody) > 0 {
		plain = &d.MessageBody
	}
	if len(d.AttachmentBody) > 0 {
		plain = &d.AttachmentBody
	}
	if !ok || len(*plain) == 0 {
		return nil
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return fmt.Errorf("sealing delivery %s: %w", d.ID, err)
	}
	if _, err := w.Write(*plain); err != nil {
		return fmt.Errorf("sealing delivery %s: %w", d.ID, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("sealing delivery %s: %w", d.ID, err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("sealing delivery %s: %w", d.ID, err)
	}
	d.Ciphertext, *plain = buf.String(), nil
	return nil
}

// Open decrypts an armored age ciphertext with the authority's identities
// and returns the forwarded notice or the message (JSON).
func Open(ciphertext string, identities ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(ciphertext)), identities...)
	if err != nil {
		return nil, fmt.Errorf("opening ciphertext: %w", err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("opening ciphertext: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("opening ciphertext: the plaintext is not JSON")
	}
	return data, nil
}

// Out is d as an authority receives it.
func (d *Delivery) Out() Out {
	return Out{ID: d.ID, NoticeID: d.NoticeID, Type: d.Type, Priority: d.Priority, Notice: d.Notice, Message: d.MessageBody,
		Attachment: d.AttachmentBody, Ciphertext: d.Ciphertext}
}

// Event is the event of type t about d for recipient, recorded by actor:
// the receipts of every path (inbox, push, NATS) are built here. The first
// hand-out of a message is message_delivered; a message's events name it.
func (d *Delivery) Event(ps *event.Pseudonyms, t event.Type, recipient, actor string, at time.Time) event.Event {
	e := event.Event{Type: t, Notice: ps.Notice(d.NoticeID), Time: at, Actor: actor, Platform: d.Platform,
		BodySHA256: d.BodySHA256, Priority: d.Priority, Recipient: recipient, Kind: d.Type, Delivery: d.ID}
	if d.Type == event.KindMessage {
		if t == event.Delivered {
			e.Type = event.MessageDelivered
		}
		e.MessageID, e.MessageKind = d.MessageID, d.MessageKind
	}
	if d.Type == event.KindAttachment {
		if t == event.Delivered {
			e.Type = event.AttachmentDelivered
		}
		e.Attachment = d.AttachmentID
	}
	return e
}

// Receipt is the receipt of d by recipient, recorded by actor at: the
// delivered event (a no-op when the hand-out was recorded) and the
// acknowledged one, as the messages that store them. Push and the NATS
// acks record receipts here; the inbox records the two steps apart.
func (d *Delivery) Receipt(ps *event.Pseudonyms, recipient, actor string, at time.Time) ([]stream.Message, error) {
	var out []stream.Message
	for _, t := range []event.Type{event.Delivered, event.Acknowledged} {
		e := d.Event(ps, t, recipient, actor, at)
		m, err := e.Message()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Find returns authority's delivery id from deliveries, looking in its own
// subjects only: another authority's delivery is simply not found
// (fault.NotFound).
func Find(ctx context.Context, deliveries jetstream.Stream, authority, id string) (*Delivery, error) {
	for _, p := range Priorities() {
		m, err := stream.Get(ctx, deliveries, stream.DeliverySubject(authority, p, id))
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d, err := Decode(m.Data)
		if err != nil {
			return nil, fault.E("find delivery", fault.Internal, err)
		}
		return d, nil
	}
	return nil, fault.Errorf("find delivery", fault.NotFound, "no delivery %s", id)
}

// Message is d stored in authority's queue: subject and message id follow
// from the delivery id, so storing it twice is a no-op.
func (d *Delivery) Message(authority string) (stream.Message, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return stream.Message{}, fmt.Errorf("encoding delivery %s: %w", d.ID, err)
	}
	return stream.Message{Subject: stream.DeliverySubject(authority, d.Priority, d.ID), ID: d.ID, Data: data}, nil
}

// Build makes the delivery of kind of fw to authority, sealed when the
// authority has an age recipient, as the message that stores it in the
// authority's queue: routing's notices and withdrawals, escalation's
// copies. Its id (the message's) follows from notice, authority and kind.
func (s *Sealer) Build(fw Forwarded, authority, kind, priority, bodySHA256 string) (stream.Message, error) {
	body, err := json.Marshal(fw)
	if err != nil {
		return stream.Message{}, fault.E("encoding delivery", fault.Poison, err)
	}
	d := Delivery{V: Version, ID: notice.DeliveryID(fw.ID, authority, kind), NoticeID: fw.ID, Type: kind,
		Priority: priority, Platform: fw.Platform, BodySHA256: bodySHA256, Notice: body}
	if err := s.Seal(authority, &d); err != nil {
		return stream.Message{}, fault.E("sealing delivery", fault.Poison, err)
	}
	m, err := d.Message(authority)
	if err != nil {
		return stream.Message{}, fault.E("delivery", fault.Poison, err)
	}
	return m, nil
}

// Escalation says that an urgent delivery to another authority stayed
// unacknowledged past its deadline, and that this authority is re-notified.
type Escalation struct {
	// From is the authority that did not acknowledge in time.
	From string `json:"from"`
	// Delivery is the id of the unacknowledged delivery.
	Delivery string `json:"delivery"`
	// QueuedAt and Deadline say when it was queued and when it was due.
	QueuedAt string `json:"queued_at"`
	Deadline string `json:"deadline"`
}

// Priorities returns the priorities in the order every path hands
// deliveries out: urgent first.
func Priorities() []string { return []string{string(notice.Urgent), string(notice.Normal)} }

// ConsumerName is the durable consumer of authority's queue of priority,
// shared by every path that drains it: the inbox, the push service, and
// authorities consuming from NATS directly.
func ConsumerName(authority, priority string) string {
	return "inbox-" + authority + "-" + priority
}
