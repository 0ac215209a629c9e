package routing

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// link is one earlier notice that a notice names: its id and how.
type link struct {
	id   string
	kind string // jurisdiction.LinkFollowUpOf or LinkSupersedes
}

// links returns the earlier notices rec follows up on or supersedes, as
// intake resolved them.
func links(rec *notice.Record) []link {
	var out []link
	if rec.FollowUpOfID != "" {
		out = append(out, link{rec.FollowUpOfID, jurisdiction.LinkFollowUpOf})
	}
	if rec.SupersedesID != "" {
		out = append(out, link{rec.SupersedesID, jurisdiction.LinkSupersedes})
	}
	return out
}

// earlierDecisions reads the stored decision of every earlier notice rec
// names, with the authorities that received it by escalation added as its
// recipients, and returns them with the events that record the links on the
// earlier notices (followed_up or superseded, naming the later notice by
// its pseudonym). The earlier notice was stored before this one (intake
// resolved it) and routing never acks a notice without its decision, so a
// decision not found yet is only not routed yet: like any other error of
// the read, it makes the notice wait and be routed again, never routed
// without the earlier recipients.
func (s *Service) earlierDecisions(ctx context.Context, rec *notice.Record, later string, received time.Time) ([]jurisdiction.Earlier, []event.Event, error) {
	var earlier []jurisdiction.Earlier
	var evs []event.Event
	for _, l := range links(rec) {
		pseudonym := s.env.Pseudonyms.Notice(l.id)
		raw, err := s.read.Read(ctx, event.SubjectOf(pseudonym, event.Decided, "", ""))
		if fault.Is(err, fault.NotFound) {
			return nil, nil, fmt.Errorf("routing: notice %s waits for the notice it names in %s (%s) to be routed", rec.ID, l.kind, l.id)
		}
		if err != nil {
			return nil, nil, fault.E("routing: reading the decision of the earlier notice "+l.id, fault.KindOf(err), err)
		}
		dec, err := event.Decode(raw)
		if err != nil || dec.Decision == nil {
			return nil, nil, fault.Errorf("routing", fault.Poison, "decision of the earlier notice %s unreadable: %v", l.id, err)
		}
		escalated, err := s.escalated(ctx, pseudonym)
		if err != nil {
			return nil, nil, fault.E("routing: reading the escalations of the earlier notice "+l.id, fault.KindOf(err), err)
		}
		earlier = append(earlier, jurisdiction.Earlier{Link: l.kind, Decision: s.router.WithEscalated(*dec.Decision, escalated...)})
		evs = append(evs, linkEvent(l, pseudonym, dec, later, received))
	}
	return earlier, evs, nil
}

// linkEvent is the event on the earlier notice (pseudonym) that the notice
// later follows it up or supersedes it, at the later notice's receipt.
func linkEvent(l link, pseudonym string, dec *event.Event, later string, received time.Time) event.Event {
	t := event.FollowedUp
	if l.kind == jurisdiction.LinkSupersedes {
		t = event.Superseded
	}
	return event.Event{Type: t, Notice: pseudonym, Time: received, Actor: Name, Platform: dec.Platform,
		BodySHA256: dec.BodySHA256, By: later}
}

// earlierPseudonyms returns the pseudonyms of the notices rec follows up on
// and supersedes ("" for none), for its decided event.
func (s *Service) earlierPseudonyms(rec *notice.Record) (followUpOf, supersedes string) {
	if rec.FollowUpOfID != "" {
		followUpOf = s.env.Pseudonyms.Notice(rec.FollowUpOfID)
	}
	if rec.SupersedesID != "" {
		supersedes = s.env.Pseudonyms.Notice(rec.SupersedesID)
	}
	return followUpOf, supersedes
}

// escalated returns the authorities that received the notice (pseudonym)
// beyond its decision so far: by escalation, or, as a follow-up, because
// an earlier notice gained them later (the escalation service's
// escalation-followups stage). They are the recipients of its queued
// events of kind escalation or notice, each once (those of the decision
// are among them; callers add them to the decision, which has them). They
// are read through the events stream's leader, so that one stored a moment
// ago is not missed.
func (s *Service) escalated(ctx context.Context, pseudonym string) ([]string, error) {
	var out []string
	err := stream.Each(ctx, s.events, event.SubjectOf(pseudonym, event.Queued, "*", "*"),
		func(m *jetstream.RawStreamMsg) error {
			q, err := event.Decode(m.Data)
			if err != nil {
				return fault.E("routing: a queued event", fault.Internal, err)
			}
			if (q.Kind == event.KindEscalation || q.Kind == event.KindNotice) && !slices.Contains(out, q.Recipient) {
				out = append(out, q.Recipient)
			}
			return nil
		})
	return out, err
}
