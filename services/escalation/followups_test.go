package escalation

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// chain is an urgent notice X routed to de-bka, and its follow-up F routed
// to de-bka (a follow_up ground) before X was escalated to europol: what
// routing and escalation store, as the follow-ups stage reads it.
type chain struct {
	s      *Service
	now    time.Time
	store  *stagetest.Store
	events *stagetest.Log
	x, f   *notice.Record
	px, pf string
}

var deGround = []jurisdiction.Ground{{Basis: jurisdiction.BasisOffence, Evidence: "locations[0].country"}}

func newChain(t *testing.T) *chain {
	c := &chain{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	env := stagetest.Env(t, &c.now, nil)
	c.s = New(env)
	var err error
	if c.s.sealer, err = delivery.NewSealer(env.Config); err != nil {
		t.Fatal(err)
	}
	c.store, c.events = stagetest.NewStore(), stagetest.NewLog()
	c.s.read, c.s.events = c.store, c.events
	c.x, c.px = c.route(t, "ref-x", "", []jurisdiction.Recipient{{Authority: "de-bka", Country: "DE", Grounds: deGround}})
	c.f, c.pf = c.route(t, "ref-f", c.x.ID, []jurisdiction.Recipient{{Authority: "de-bka", Country: "DE",
		Grounds: append(deGround, jurisdiction.Ground{Basis: jurisdiction.BasisFollowUp, Evidence: jurisdiction.LinkFollowUpOf})}})
	return c
}

// route stores what routing stores for notice ref (a follow-up of the
// notice followUpOf, when given) with recipients: the body, the decided
// event, the link event on the earlier notice, each delivery and its
// queued event.
func (c *chain) route(t *testing.T, ref, followUpOf string, recipients []jurisdiction.Recipient) (*notice.Record, string) {
	t.Helper()
	rec, _ := stagetest.Record(t, ref, "DE", "DE", true, c.now)
	rec.FollowUpOfID = followUpOf
	body, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	c.store.Put(stream.Message{Subject: stream.NoticeSubject(rec.ID), Data: body})
	p := c.s.env.Pseudonyms.Notice(rec.ID)
	dec := event.Event{Type: event.Decided, Notice: p, Time: c.now, Actor: "routing", Platform: rec.Platform,
		Priority: "urgent", Decision: &jurisdiction.Decision{Priority: notice.Urgent, Recipients: recipients}}
	var evs []event.Event
	if followUpOf != "" {
		dec.FollowUpOf = c.s.env.Pseudonyms.Notice(followUpOf)
		evs = append(evs, event.Event{Type: event.FollowedUp, Notice: dec.FollowUpOf, Time: c.now, Actor: "routing",
			Platform: rec.Platform, By: p})
	}
	evs = append([]event.Event{dec}, evs...)
	for _, r := range recipients {
		m, err := c.s.sealer.Build(delivery.Forwarded{ID: rec.ID, Platform: rec.Platform}, r.Authority, event.KindNotice, "urgent", rec.BodySHA256)
		if err != nil {
			t.Fatal(err)
		}
		c.store.Put(m)
		evs = append(evs, event.Event{Type: event.Queued, Notice: p, Time: c.now, Actor: "routing", Platform: rec.Platform,
			Priority: "urgent", Recipient: r.Authority, Kind: event.KindNotice, Delivery: m.ID})
	}
	for _, e := range evs {
		c.put(t, e)
	}
	return rec, p
}

// put stores e where the stage reads it: the log of events, and (for a
// single read) the store.
func (c *chain) put(t *testing.T, e event.Event) stream.Input {
	t.Helper()
	m, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	c.events.Put(m)
	c.store.Put(m)
	return stream.Input{Subject: m.Subject, Data: m.Data}
}

// escalate stores X's escalation copy for europol's queued event.
func (c *chain) escalate(t *testing.T) stream.Input {
	return c.put(t, event.Event{Type: event.Queued, Notice: c.px, Time: c.now, Actor: Name, Platform: c.x.Platform,
		Priority: "urgent", Recipient: "europol", Kind: event.KindEscalation,
		Delivery: notice.DeliveryID(c.x.ID, "europol", event.KindEscalation)})
}

// queuedOf returns the queued event of notice (pseudonym) for authority,
// as stored.
func (c *chain) queuedOf(t *testing.T, pseudonym, authority string) stream.Input {
	t.Helper()
	m, err := c.events.Last(context.Background(), event.SubjectOf(pseudonym, event.Queued, authority, event.KindNotice))
	if err != nil {
		t.Fatal(err)
	}
	return stream.Input{Subject: m.Subject, Data: m.Data}
}

// wantFollowUp checks that out is the follow-up (notice rec, following
// earlier) for europol: the delivery routing would have queued, with the
// follow_up ground, then its queued event, stored last.
func wantFollowUp(t *testing.T, out []stream.Message, rec *notice.Record, earlier string) {
	t.Helper()
	if len(out) != 2 {
		t.Fatalf("%d outputs, want the delivery and its queued event", len(out))
	}
	id := notice.DeliveryID(rec.ID, "europol", event.KindNotice)
	if out[0].Subject != stream.DeliverySubject("europol", "urgent", id) || out[0].ID != id || out[0].Last {
		t.Fatalf("delivery %s (id %s, last %v), want routing's subject for (%s, europol)", out[0].Subject, out[0].ID, out[0].Last, rec.ID)
	}
	d, err := delivery.Decode(out[0].Data)
	if err != nil || d.Type != event.KindNotice || d.NoticeID != rec.ID {
		t.Fatalf("delivery %+v, %v", d, err)
	}
	fw := decodeForwarded(t, d)
	want := []jurisdiction.Ground{{Basis: jurisdiction.BasisFollowUp, Evidence: jurisdiction.LinkFollowUpOf}}
	if fw.FollowUpOf != earlier || len(fw.Grounds) != 1 || fw.Grounds[0] != want[0] || fw.Escalation != nil ||
		len(fw.CoRecipients) != 1 || fw.CoRecipients[0].Authority != "de-bka" {
		t.Errorf("follow-up for europol: follow_up_of %q, grounds %v, co-recipients %v, escalation %v",
			fw.FollowUpOf, fw.Grounds, fw.CoRecipients, fw.Escalation)
	}
	evs := stagetest.Events(t, out)
	if len(evs) != 1 || evs[0].Type != event.Queued || evs[0].Recipient != "europol" || evs[0].Kind != event.KindNotice ||
		evs[0].Delivery != id || !out[1].Last {
		t.Errorf("queued event %+v, last %v", evs, out[1].Last)
	}
}

// TestEscalationReachesFollowUps: X's escalation to europol, stored after
// its follow-up F was routed, hands europol F; and F's queued event, read
// after the escalation was stored (routing raced it), hands europol the
// same delivery (same subject: stored once).
func TestEscalationReachesFollowUps(t *testing.T) {
	c := newChain(t)
	ctx := context.Background()
	esc := c.escalate(t)
	out, err := c.s.followUps(ctx, esc)
	if err != nil {
		t.Fatal(err)
	}
	wantFollowUp(t, out, c.f, c.x.ID)

	raced, err := c.s.followUps(ctx, c.queuedOf(t, c.pf, "de-bka"))
	if err != nil {
		t.Fatal(err)
	}
	wantFollowUp(t, raced, c.f, c.x.ID)

	// X's own queued event, and F's once F is at europol: nothing new.
	for _, in := range []stream.Input{c.queuedOf(t, c.px, "de-bka")} {
		if out, err := c.s.followUps(ctx, in); err != nil || len(out) != 0 {
			t.Errorf("%s: %v, %d outputs", in.Subject, err, len(out))
		}
	}
}

// TestEscalationFollowUpsSkip: nothing when routing already queued the
// follow-up for europol (it saw the escalation), when the follow-up is
// withdrawn, or not queued yet (its own queued events trigger the stage).
func TestEscalationFollowUpsSkip(t *testing.T) {
	ctx := context.Background()

	c := newChain(t)
	esc := c.escalate(t)
	dec, err := c.s.decided(ctx, c.pf)
	if err != nil {
		t.Fatal(err)
	}
	dec.Decision.Recipients = append(dec.Decision.Recipients, jurisdiction.Recipient{Authority: "europol", Country: "EU"})
	c.put(t, *dec)
	if out, err := c.s.followUps(ctx, esc); err != nil || len(out) != 0 {
		t.Errorf("europol among the follow-up's recipients: %v, %d outputs", err, len(out))
	}

	c = newChain(t)
	esc = c.escalate(t)
	c.put(t, event.Event{Type: event.Withdrawn, Notice: c.pf, Time: c.now, Actor: "intake", Platform: c.f.Platform})
	if out, err := c.s.followUps(ctx, esc); err != nil || len(out) != 0 {
		t.Errorf("follow-up withdrawn: %v, %d outputs", err, len(out))
	}

	c = newChain(t)
	esc = c.escalate(t)
	c.events.Msgs = c.events.Msgs[:len(c.events.Msgs)-2] // F's queued event and the escalation
	c.escalate(t)
	if out, err := c.s.followUps(ctx, esc); err != nil || len(out) != 0 {
		t.Errorf("follow-up not queued yet: %v, %d outputs", err, len(out))
	}
}

// TestEscalationFollowUpsChain: the follow-up queued for europol by this
// stage triggers it again, and hands europol the follow-up of the
// follow-up, which routing sent to de-bka alone.
func TestEscalationFollowUpsChain(t *testing.T) {
	c := newChain(t)
	ctx := context.Background()
	g, _ := c.route(t, "ref-g", c.f.ID, []jurisdiction.Recipient{{Authority: "de-bka", Country: "DE",
		Grounds: []jurisdiction.Ground{{Basis: jurisdiction.BasisFollowUp, Evidence: jurisdiction.LinkFollowUpOf}}}})
	out, err := c.s.followUps(ctx, c.escalate(t))
	if err != nil {
		t.Fatal(err)
	}
	wantFollowUp(t, out, c.f, c.x.ID)
	c.events.Put(out[1])
	out, err = c.s.followUps(ctx, c.queuedOf(t, c.pf, "europol"))
	if err != nil {
		t.Fatal(err)
	}
	// G, then F for europol again (same subject: refused as stored).
	if len(out) != 4 {
		t.Fatalf("%d outputs, want G and F again", len(out))
	}
	wantFollowUp(t, out[:2], g, c.f.ID)
	wantFollowUp(t, out[2:], c.f, c.x.ID)
}
