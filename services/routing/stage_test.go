package routing

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// newStage returns the routing stage on the test configuration, reading
// from store, without a broker.
func newStage(t *testing.T, now *time.Time, store stream.Reader) *Service {
	t.Helper()
	s := New(stagetest.Env(t, now, nil))
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	s.read = store
	return s
}

// forwarded decodes the delivery in m.
func forwarded(t *testing.T, m stream.Message) (*delivery.Delivery, delivery.Forwarded) {
	t.Helper()
	d, err := delivery.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	var fw delivery.Forwarded
	if err := json.Unmarshal(d.Notice, &fw); err != nil {
		t.Fatal(err)
	}
	return d, fw
}

// TestRouteNotice: a notice about an offence in DE by a suspect in FR goes
// to both authorities, each told of the other, with accepted and decided
// first and the queued events last, stored after the deliveries; routing it again gives the same
// messages (a crash between storing and acking is a no-op).
func TestRouteNotice(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := newStage(t, &now, stagetest.NewStore())
	rec, data := stagetest.Record(t, "ref-1", "DE", "FR", true, now.Add(-time.Second))
	out, err := s.stage(context.Background(), stream.Input{Subject: stream.NoticeSubject(rec.ID), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range out {
		subjects = append(subjects, m.Subject)
	}
	p := s.env.Pseudonyms.Notice(rec.ID)
	want := []string{
		event.SubjectOf(p, event.Accepted, "", ""), event.SubjectOf(p, event.Decided, "", ""),
		stream.DeliverySubject("de-bka", "urgent", notice.DeliveryID(rec.ID, "de-bka", event.KindNotice)),
		stream.DeliverySubject("fr-police", "urgent", notice.DeliveryID(rec.ID, "fr-police", event.KindNotice)),
		event.SubjectOf(p, event.Queued, "de-bka", event.KindNotice), event.SubjectOf(p, event.Queued, "fr-police", event.KindNotice),
	}
	if !slices.Equal(subjects, want) {
		t.Fatalf("outputs:\n got %q\nwant %q", subjects, want)
	}
	// A queued event is stored only after the deliveries: it says that
	// its delivery is in the queue.
	for i, m := range out {
		if m.Last != (i >= 4) {
			t.Errorf("output %s: Last %v", m.Subject, m.Last)
		}
	}
	for _, m := range out[2:4] {
		d, fw := forwarded(t, m)
		if d.NoticeID != rec.ID || d.Type != event.KindNotice || d.BodySHA256 != rec.BodySHA256 || d.ID != m.ID {
			t.Errorf("delivery %s: %+v", m.Subject, d)
		}
		if len(fw.Grounds) == 0 || len(fw.CoRecipients) != 1 || fw.Reference != "ref-1" {
			t.Errorf("delivery %s: grounds %v, co-recipients %v, reference %q", m.Subject, fw.Grounds, fw.CoRecipients, fw.Reference)
		}
	}
	evs := stagetest.Events(t, out)
	if evs[1].Decision == nil || len(evs[1].Decision.Recipients) != 2 || evs[2].Delivery != out[2].ID {
		t.Errorf("decided %+v, queued %+v", evs[1], evs[2])
	}
	again, err := s.stage(context.Background(), stream.Input{Subject: stream.NoticeSubject(rec.ID), Data: data})
	if err != nil || !slices.EqualFunc(out, again, func(a, b stream.Message) bool {
		return a.Subject == b.Subject && a.ID == b.ID && string(a.Data) == string(b.Data)
	}) {
		t.Errorf("routing again gave other messages (%v)", err)
	}
}

// TestWithdrawal: the withdrawal goes to every recipient of the decision,
// carrying the notice while its body is kept and only the reference past
// retention (NotFound); any other failure to read is retried, never
// degraded into a delivery that could not be corrected.
func TestWithdrawal(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	store := stagetest.NewStore()
	s := newStage(t, &now, store)
	rec, data := stagetest.Record(t, "ref-2", "DE", "FR", false, now)
	routed, err := s.stage(context.Background(), stream.Input{Subject: stream.NoticeSubject(rec.ID), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := json.Marshal(notice.Withdrawal{V: 1, NoticeID: rec.ID, Platform: rec.Platform, Reference: rec.Reference,
		Reason: "mistake", RequestedAt: module.Timestamp(now)})
	in := stream.Input{Subject: stream.WithdrawSubject(rec.ID), Data: wd}

	// Not decided yet: retried, not poison.
	if _, err := s.stage(context.Background(), in); err == nil || fault.Is(err, fault.Poison) {
		t.Fatalf("withdrawal before the decision: %v", err)
	}
	store.Put(routed...)
	store.Put(stream.Message{Subject: stream.NoticeSubject(rec.ID), Data: data})
	for _, tc := range []struct {
		name     string
		withBody bool
	}{{"body kept", true}, {"past retention", false}} {
		if !tc.withBody {
			delete(store.Msgs, stream.NoticeSubject(rec.ID))
		}
		out, err := s.stage(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		evs := stagetest.Events(t, out)
		if len(out) != 5 || len(evs) != 3 || evs[0].Type != event.Withdrawn || evs[1].Kind != event.KindWithdrawal {
			t.Fatalf("%s: %d outputs, events %+v", tc.name, len(out), evs)
		}
		_, fw := forwarded(t, out[1])
		if fw.Withdrawal == nil || fw.Withdrawal.Reason != "mistake" || fw.Reference != "ref-2" ||
			(fw.Category != "") != tc.withBody || len(fw.CoRecipients) != 1 {
			t.Errorf("%s: forwarded %+v", tc.name, fw)
		}
	}
	store.Errs[stream.NoticeSubject(rec.ID)] = fault.Errorf("read", fault.Unavailable, "NATS is down")
	if out, err := s.stage(context.Background(), in); !fault.Is(err, fault.Unavailable) || out != nil {
		t.Errorf("reading the body failing: %v, %d outputs", err, len(out))
	}
}

// TestRoutingPoison: what can never be routed is poison.
func TestRoutingPoison(t *testing.T) {
	now := time.Now()
	s := newStage(t, &now, stagetest.NewStore())
	for _, in := range []stream.Input{
		{Subject: "nr.other.x", Data: []byte("{}")},
		{Subject: stream.NoticeSubject("x"), Data: []byte("not json")},
		{Subject: stream.WithdrawSubject("x"), Data: []byte(`{"v":1}`)},
	} {
		if _, err := s.stage(context.Background(), in); !fault.Is(err, fault.Poison) {
			t.Errorf("%s: %v", in.Subject, err)
		}
	}
}
