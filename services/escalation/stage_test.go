package escalation

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// fixture is an urgent notice routed to de-bka (escalation target
// fr-police), its queued event as the stage reads it, and a store holding
// the delivery, the body and the decision.
type fixture struct {
	s      *Service
	now    time.Time
	queued *event.Event
	in     stream.Input
	store  *stagetest.Store
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	env := stagetest.Env(t, &f.now, func(c *config.Config) {
		c.Deliveries.UrgentDeadline = config.Duration(10 * time.Minute)
		for i := range c.Authorities {
			if c.Authorities[i].ID == "de-bka" {
				c.Authorities[i].Escalation = "fr-police"
			}
		}
	})
	f.s = New(env)
	var err error
	if f.s.sealer, err = delivery.NewSealer(env.Config); err != nil {
		t.Fatal(err)
	}
	rec, body := stagetest.Record(t, "ref-1", "DE", "DE", true, f.now)
	p := env.Pseudonyms.Notice(rec.ID)
	dec := event.Event{Type: event.Decided, Notice: p, Time: f.now, Actor: "routing", Platform: rec.Platform, Priority: "urgent",
		Decision: &jurisdiction.Decision{Priority: notice.Urgent, Recipients: []jurisdiction.Recipient{
			{Authority: "de-bka", Country: "DE", Grounds: []jurisdiction.Ground{{Basis: jurisdiction.BasisOffence, Evidence: "locations[0].country"}}},
			{Authority: "ie-garda", Country: "IE", Grounds: []jurisdiction.Ground{{Basis: jurisdiction.BasisEstablishment, Evidence: "platform"}}}}}}
	dm, err := dec.Message()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := f.s.sealer.Build(delivery.Forwarded{ID: rec.ID, Platform: rec.Platform}, "de-bka", event.KindNotice, "urgent", rec.BodySHA256)
	if err != nil {
		t.Fatal(err)
	}
	f.store = stagetest.NewStore(dm, orig, stream.Message{Subject: stream.NoticeSubject(rec.ID), Data: body})
	f.s.read = f.store
	f.queued = &event.Event{Type: event.Queued, Notice: p, Time: f.now, Actor: "routing", Platform: rec.Platform,
		BodySHA256: rec.BodySHA256, Priority: "urgent", Recipient: "de-bka", Kind: event.KindNotice, Delivery: orig.ID}
	qm, err := f.queued.Message()
	if err != nil {
		t.Fatal(err)
	}
	f.in = stream.Input{Subject: qm.Subject, Data: qm.Data}
	return f
}

// TestEscalationTiming: before the deadline the queued event comes back
// at the deadline (computed from the event's time, not from when it is
// read); past it the target gets a copy, and the escalated event is
// stored last; once acknowledged, withdrawn or escalated, nothing.
func TestEscalationTiming(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.now = f.queued.Time.Add(4 * time.Minute)
	out, err := f.s.stage(ctx, f.in)
	var later *stream.Later
	if !errors.As(err, &later) || later.After != 6*time.Minute || out != nil {
		t.Fatalf("before the deadline: %v, %d outputs", err, len(out))
	}

	f.now = f.queued.Time.Add(11 * time.Minute)
	out, err = f.s.stage(ctx, f.in)
	if err != nil || len(out) != 3 {
		t.Fatalf("past the deadline: %v, %d outputs", err, len(out))
	}
	d, err := delivery.Decode(out[0].Data)
	if err != nil || d.Type != event.KindEscalation || out[0].Subject != stream.DeliverySubject("fr-police", "urgent", d.ID) {
		t.Fatalf("copy %s: %+v, %v", out[0].Subject, d, err)
	}
	evs := stagetest.Events(t, out)
	if evs[0].Type != event.Queued || evs[0].Recipient != "fr-police" || evs[1].Type != event.Escalated ||
		!out[2].Last || out[0].Last || out[1].Last {
		t.Fatalf("events %+v, last %v", evs, []bool{out[0].Last, out[1].Last, out[2].Last})
	}

	for _, done := range []event.Type{event.Acknowledged, event.Withdrawn, event.Escalated} {
		e := *f.queued
		e.Type = done
		if done == event.Withdrawn {
			e.Recipient, e.Kind = "", ""
		}
		m, err := e.Message()
		if err != nil {
			t.Fatal(err)
		}
		f.store.Put(m)
		if out, err := f.s.stage(ctx, f.in); err != nil || out != nil {
			t.Errorf("once %s: %v, %d outputs", done, err, len(out))
		}
		delete(f.store.Msgs, m.Subject)
	}
}

// TestEscalationReads: the copy carries the grounds and co-recipients of
// the decision; a decision that cannot be read for any reason but its
// absence is retried, never left out of a copy whose id is fixed.
func TestEscalationReads(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.now = f.queued.Time.Add(time.Hour)
	out, err := f.s.stage(ctx, f.in)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := delivery.Decode(out[0].Data)
	fw := decodeForwarded(t, d)
	if len(fw.Grounds) != 1 || len(fw.CoRecipients) != 2 || fw.Escalation == nil || fw.Escalation.From != "de-bka" {
		t.Errorf("copy: grounds %v, co-recipients %v, escalation %+v", fw.Grounds, fw.CoRecipients, fw.Escalation)
	}
	decided := event.SubjectOf(f.queued.Notice, event.Decided, "", "")
	f.store.Errs[decided] = fault.Errorf("read", fault.Unavailable, "NATS is down")
	if out, err := f.s.stage(ctx, f.in); !fault.Is(err, fault.Unavailable) || out != nil {
		t.Errorf("decision unreadable: %v, %d outputs", err, len(out))
	}
	delete(f.store.Errs, decided)
	delete(f.store.Msgs, decided)
	if out, err := f.s.stage(ctx, f.in); err != nil || len(out) != 3 {
		t.Errorf("no decision: %v, %d outputs", err, len(out))
	}
	normal := *f.queued
	normal.Priority = "normal"
	m, _ := normal.Message()
	if out, err := f.s.stage(ctx, stream.Input{Subject: m.Subject, Data: m.Data}); err != nil || out != nil {
		t.Errorf("normal priority: %v, %d outputs", err, len(out))
	}
}

func decodeForwarded(t *testing.T, d *delivery.Delivery) delivery.Forwarded {
	t.Helper()
	var fw delivery.Forwarded
	if err := json.Unmarshal(d.Notice, &fw); err != nil {
		t.Fatal(err)
	}
	return fw
}
