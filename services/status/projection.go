package status

import (
	"slices"
	"time"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Projection is the state of one notice, folded from its lifecycle events.
// Applying an event is idempotent and order-independent (every field only
// ever goes from unset to set, keeping the earliest time; recipients are
// in the decision's order), so redelivered or reordered events give the
// same state.
type Projection struct {
	ID          string      `json:"id"`
	Platform    string      `json:"platform"`
	Reference   string      `json:"reference,omitempty"`
	ReceivedAt  string      `json:"received_at,omitempty"`
	Priority    string      `json:"priority,omitempty"`
	DecidedAt   string      `json:"decided_at,omitempty"`
	WithdrawnAt string      `json:"withdrawn_at,omitempty"`
	Recipients  []Recipient `json:"recipients,omitempty"`
	// Superseded is set once a later notice supersedes this one.
	Superseded Supersession `json:"superseded,omitzero"`
}

// Recipient is the state of one recipient's deliveries.
type Recipient struct {
	Authority string                `json:"authority"`
	Country   string                `json:"country,omitempty"`
	Grounds   []jurisdiction.Ground `json:"grounds,omitempty"`
	// Times of the notice delivery and of the withdrawal delivery.
	Notice     Steps `json:"notice"`
	Withdrawal Steps `json:"withdrawal"`
	// EscalatedAt is when the urgent notice delivery passed its deadline
	// unacknowledged (deliveries.urgent_deadline).
	EscalatedAt string `json:"escalated_at,omitempty"`
}

// Steps are the times a delivery reached each step.
type Steps struct {
	QueuedAt       string `json:"queued_at,omitempty"`
	DeliveredAt    string `json:"delivered_at,omitempty"`
	AcknowledgedAt string `json:"acknowledged_at,omitempty"`
}

// Stored folds in what the stored body says.
func (p *Projection) Stored(rec *notice.Record, n *notice.Notice) {
	p.ID, p.Platform, p.Reference = rec.ID, rec.Platform, rec.Reference
	earliest(&p.ReceivedAt, rec.ReceivedAt)
	if p.Priority == "" {
		p.Priority = string(n.Priority())
	}
}

// Apply folds e into p.
func (p *Projection) Apply(e *event.Event) {
	if p.Platform == "" {
		p.Platform = e.Platform
	}
	if e.Priority != "" {
		p.Priority = e.Priority
	}
	at := module.Timestamp(e.Time)
	switch e.Type {
	case event.Accepted:
		earliest(&p.ReceivedAt, at)
	case event.Decided:
		earliest(&p.DecidedAt, at)
		if e.Decision != nil {
			p.decided(e.Decision)
		}
	case event.Withdrawn:
		earliest(&p.WithdrawnAt, at)
	case event.Escalated:
		earliest(&p.recipient(e.Recipient).EscalatedAt, at)
	case event.FollowedUp, event.Superseded:
		p.applyLink(e)
	case event.Queued, event.Delivered, event.Acknowledged:
		if e.Kind == event.KindEscalation || e.Kind == event.KindMessage || e.Kind == event.KindAttachment {
			// The escalation target's copy, or a message's receipt: not
			// the notice's delivery.
			break
		}
		if e.Kind == event.KindWithdrawal && p.DecidedAt != "" && !p.named(e.Recipient) {
			// The withdrawal sent to an escalation target: like its
			// copy, not a recipient's delivery.
			break
		}
		r := p.recipient(e.Recipient)
		steps := &r.Notice
		if e.Kind == event.KindWithdrawal {
			steps = &r.Withdrawal
		}
		switch e.Type {
		case event.Queued:
			earliest(&steps.QueuedAt, at)
		case event.Delivered:
			earliest(&steps.DeliveredAt, at)
		case event.Acknowledged:
			earliest(&steps.AcknowledgedAt, at)
		}
	}
}

// recipient returns authority's state, adding it if new: among those the
// decision has not named yet (no country), in order of authority, so that
// the order does not depend on which event came first.
func (p *Projection) recipient(authority string) *Recipient {
	for i := range p.Recipients {
		if p.Recipients[i].Authority == authority {
			return &p.Recipients[i]
		}
	}
	i := len(p.Recipients)
	for i > 0 && p.Recipients[i-1].Country == "" && p.Recipients[i-1].Authority > authority {
		i--
	}
	p.Recipients = slices.Insert(p.Recipients, i, Recipient{Authority: authority})
	return &p.Recipients[i]
}

// named reports whether authority is among the recipients (the decision's
// once it is known).
func (p *Projection) named(authority string) bool {
	return slices.ContainsFunc(p.Recipients, func(r Recipient) bool { return r.Authority == authority })
}

// decided puts the decision's recipients first, in its order, with their
// country and grounds. An authority the decision does not name that only
// received the withdrawal (an escalation target's) is dropped: once the
// decision is known, its events are not folded in (Apply).
func (p *Projection) decided(d *jurisdiction.Decision) {
	rest := slices.DeleteFunc(p.Recipients, func(r Recipient) bool {
		return r.Notice == (Steps{}) && r.EscalatedAt == "" && !slices.ContainsFunc(d.Recipients, func(x jurisdiction.Recipient) bool {
			return x.Authority == r.Authority
		})
	})
	p.Recipients = make([]Recipient, 0, len(d.Recipients)+len(rest))
	for _, r := range d.Recipients {
		rr := Recipient{Authority: r.Authority}
		if i := slices.IndexFunc(rest, func(x Recipient) bool { return x.Authority == r.Authority }); i >= 0 {
			rr = rest[i]
			rest = slices.Delete(rest, i, i+1)
		}
		rr.Country, rr.Grounds = r.Country, r.Grounds
		p.Recipients = append(p.Recipients, rr)
	}
	p.Recipients = append(p.Recipients, rest...)
}

// earliest sets *dst to t unless it holds an earlier time already.
func earliest(dst *string, t string) {
	if *dst == "" {
		*dst = t
		return
	}
	a, err1 := time.Parse(time.RFC3339Nano, *dst)
	b, err2 := time.Parse(time.RFC3339Nano, t)
	if err1 == nil && err2 == nil && b.Before(a) {
		*dst = t
	}
}

// View is the answer to GET /v1/notices/{id}.
type View struct {
	ID          string `json:"id"`
	Reference   string `json:"reference"`
	Status      string `json:"status"`
	Priority    string `json:"priority"`
	ReceivedAt  string `json:"received_at"`
	WithdrawnAt string `json:"withdrawn_at,omitempty"`
	// SupersededAt and SupersededBy: when and by which notice (its id)
	// this one was superseded.
	SupersededAt string          `json:"superseded_at,omitempty"`
	SupersededBy string          `json:"superseded_by,omitempty"`
	Recipients   []RecipientView `json:"recipients"`
}

// RecipientView is one recipient in a View.
type RecipientView struct {
	Authority      string                `json:"authority"`
	Country        string                `json:"country"`
	Status         string                `json:"status"`
	Grounds        []jurisdiction.Ground `json:"grounds"`
	QueuedAt       string                `json:"queued_at,omitempty"`
	DeliveredAt    string                `json:"delivered_at,omitempty"`
	AcknowledgedAt string                `json:"acknowledged_at,omitempty"`
	EscalatedAt    string                `json:"escalated_at,omitempty"`
}

// View renders p for its platform. The notice is acknowledged once every
// recipient has acknowledged it, delivered once every recipient has had it
// handed out, routed once decided.
func (p *Projection) View() View {
	v := View{ID: p.ID, Reference: p.Reference, Priority: p.Priority, ReceivedAt: p.ReceivedAt,
		WithdrawnAt: p.WithdrawnAt, SupersededAt: p.Superseded.At, SupersededBy: p.Superseded.By, Recipients: []RecipientView{}}
	all := func(pred func(*Recipient) bool) bool {
		for i := range p.Recipients {
			if !pred(&p.Recipients[i]) {
				return false
			}
		}
		return len(p.Recipients) > 0
	}
	switch {
	case p.WithdrawnAt != "":
		v.Status = "withdrawn"
	case p.Superseded.At != "" || p.Superseded.By != "":
		v.Status = "superseded"
	case p.DecidedAt == "":
		v.Status = "accepted"
	case all(func(r *Recipient) bool { return r.Notice.AcknowledgedAt != "" }):
		v.Status = "acknowledged"
	case all(func(r *Recipient) bool { return r.Notice.DeliveredAt != "" || r.Notice.AcknowledgedAt != "" }):
		v.Status = "delivered"
	default:
		v.Status = "routed"
	}
	for _, r := range p.Recipients {
		rv := RecipientView{Authority: r.Authority, Country: r.Country, Grounds: r.Grounds,
			QueuedAt: r.Notice.QueuedAt, DeliveredAt: r.Notice.DeliveredAt, AcknowledgedAt: r.Notice.AcknowledgedAt,
			EscalatedAt: r.EscalatedAt}
		if rv.Grounds == nil {
			rv.Grounds = []jurisdiction.Ground{}
		}
		switch {
		case p.WithdrawnAt != "":
			rv.Status = "withdrawn"
		case r.Notice.AcknowledgedAt != "":
			rv.Status = "acknowledged"
		case r.Notice.DeliveredAt != "":
			rv.Status = "delivered"
		default:
			rv.Status = "queued"
		}
		v.Recipients = append(v.Recipients, rv)
	}
	return v
}
