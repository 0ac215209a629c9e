package escalation

import (
	"context"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// followUps is the stage of the escalation-followups consumer, which reads
// every queued event of a notice or escalation delivery: the notice (M)
// has gained a recipient (R). Routing hands a follow-up or correction to
// every recipient of the earlier notice it knows of when it routes it
// (contract section 9); a recipient gained later, by escalation, or by
// this stage, is handed them here:
//   - M's follow-ups and corrections already routed go to R;
//   - M, when it follows up on or corrects an earlier notice, goes to every
//     recipient of that notice that its decision lacks.
//
// Both directions read what is stored after the event that triggers them,
// so an escalation racing the routing of a follow-up is seen by one of the
// two (or both: the delivery's subject is the one routing would use, and
// is stored once). A delivery it queues triggers this stage again, which
// carries a recipient down a chain of follow-ups.
func (s *Service) followUps(ctx context.Context, in stream.Input) ([]stream.Message, error) {
	q, err := event.Decode(in.Data)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	if q.Type != event.Queued || (q.Kind != event.KindNotice && q.Kind != event.KindEscalation) {
		return nil, nil
	}
	type pair struct{ later, authority string }
	var pairs []pair
	add := func(p pair) {
		if !slices.Contains(pairs, p) {
			pairs = append(pairs, p)
		}
	}
	for _, t := range []event.Type{event.FollowedUp, event.Superseded} {
		err := stream.Each(ctx, s.events, stream.EventSubject(q.Notice, string(t), "*"), func(m *jetstream.RawStreamMsg) error {
			l, err := event.Decode(m.Data)
			if err != nil {
				return fault.E("escalation: a link event", fault.Internal, err)
			}
			add(pair{l.By, q.Recipient})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	dec, err := s.decided(ctx, q.Notice)
	if err != nil {
		return nil, err
	}
	for _, e := range []string{dec.FollowUpOf, dec.Supersedes} {
		if e == "" {
			continue
		}
		rs, err := s.recipients(ctx, e)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			add(pair{q.Notice, r})
		}
	}
	var out []stream.Message
	for _, p := range pairs {
		ms, err := s.extend(ctx, p.later, p.authority)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// decided reads the decided event of notice (its pseudonym). Routing
// stores it before the notice's queued and link events, so it is there
// for any notice this stage hears of.
func (s *Service) decided(ctx context.Context, pseudonym string) (*event.Event, error) {
	raw, err := s.read.Read(ctx, event.SubjectOf(pseudonym, event.Decided, "", ""))
	if err != nil {
		return nil, fault.E("escalation: reading the decision of notice "+pseudonym, fault.KindOf(err), err)
	}
	dec, err := event.Decode(raw)
	if err != nil || dec.Decision == nil {
		return nil, fault.Errorf("escalation", fault.Poison, "decision of notice %s unreadable: %v", pseudonym, err)
	}
	return dec, nil
}

// recipients returns the authorities queued notice (pseudonym) so far, by
// routing, escalation or this stage, each once.
func (s *Service) recipients(ctx context.Context, pseudonym string) ([]string, error) {
	var out []string
	err := stream.Each(ctx, s.events, stream.EventSubject(pseudonym, string(event.Queued), "*", "*"),
		func(m *jetstream.RawStreamMsg) error {
			q, err := event.Decode(m.Data)
			if err != nil {
				return fault.E("escalation: a queued event", fault.Internal, err)
			}
			if (q.Kind == event.KindNotice || q.Kind == event.KindEscalation) && !slices.Contains(out, q.Recipient) {
				out = append(out, q.Recipient)
			}
			return nil
		})
	return out, err
}

// extend returns the delivery of notice later (a pseudonym) to authority,
// which received an earlier notice that later follows up on or supersedes,
// and its queued event (stored last); nothing when later's decision has
// the authority (routing queued it), when later is withdrawn, not queued
// yet (its queued events trigger this stage again) or past retention.
// The delivery is the one routing builds for a recipient of the earlier
// notice: kind notice, id and subject from (later, authority), grounds
// {follow_up, link} for each link to a notice the authority received.
func (s *Service) extend(ctx context.Context, later, authority string) ([]stream.Message, error) {
	dec, err := s.decided(ctx, later)
	if err != nil {
		return nil, err
	}
	d := dec.Decision
	if slices.ContainsFunc(d.Recipients, func(r jurisdiction.Recipient) bool { return r.Authority == authority }) {
		return nil, nil
	}
	switch _, err := s.read.Read(ctx, event.SubjectOf(later, event.Withdrawn, "", "")); {
	case err == nil:
		return nil, nil
	case !fault.Is(err, fault.NotFound):
		return nil, err
	}
	var grounds []jurisdiction.Ground
	for _, l := range []struct{ earlier, link string }{
		{dec.FollowUpOf, jurisdiction.LinkFollowUpOf}, {dec.Supersedes, jurisdiction.LinkSupersedes}} {
		if l.earlier == "" {
			continue
		}
		rs, err := s.recipients(ctx, l.earlier)
		if err != nil {
			return nil, err
		}
		if slices.Contains(rs, authority) {
			grounds = append(grounds, jurisdiction.Ground{Basis: jurisdiction.BasisFollowUp, Evidence: l.link})
		}
	}
	if len(grounds) == 0 {
		return nil, nil
	}
	rec, n, err := s.body(ctx, later)
	if rec == nil || err != nil {
		return nil, err
	}
	fw := delivery.Forwarded{ID: rec.ID, Platform: rec.Platform, ReceivedAt: rec.ReceivedAt, Notice: n,
		FollowUpOf: rec.FollowUpOfID, Supersedes: rec.SupersedesID, Grounds: grounds,
		CoRecipients: delivery.CoRecipients(d, authority)}
	m, err := s.sealer.Build(fw, authority, event.KindNotice, string(d.Priority), rec.BodySHA256)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	qe := event.Event{Type: event.Queued, Notice: later, Time: s.env.Now(), Actor: Name, Platform: rec.Platform,
		BodySHA256: rec.BodySHA256, Priority: string(d.Priority), Recipient: authority, Kind: event.KindNotice, Delivery: m.ID}
	qm, err := qe.Message()
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	qm.Last = true
	return []stream.Message{m, qm}, nil
}

// body returns the stored record of notice (a pseudonym), found through
// one of its notice deliveries (an event names a notice only by its
// pseudonym); nil when it has none yet or they or the body have expired.
func (s *Service) body(ctx context.Context, pseudonym string) (*notice.Record, *notice.Notice, error) {
	qm, err := s.events.Next(ctx, 1, event.SubjectOf(pseudonym, event.Queued, "*", event.KindNotice))
	if fault.Is(err, fault.NotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	q, err := event.Decode(qm.Data)
	if err != nil {
		return nil, nil, fault.E("escalation: a queued event", fault.Internal, err)
	}
	dm, err := s.read.Read(ctx, stream.DeliverySubject(q.Recipient, q.Priority, q.Delivery))
	if fault.Is(err, fault.NotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := delivery.Decode(dm)
	if err != nil {
		return nil, nil, fault.E("escalation", fault.Poison, err)
	}
	data, err := s.read.Read(ctx, stream.NoticeSubject(d.NoticeID))
	if fault.Is(err, fault.NotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	rec, n, err := notice.DecodeRecord(data)
	if err != nil {
		return nil, nil, fault.E("escalation", fault.Poison, err)
	}
	return rec, n, nil
}
