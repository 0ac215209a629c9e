package routing

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// newStage returns the routing stage on the test configuration (changed
// by change, when given), reading from store and scanning an empty events
// log, without a broker.
func newStage(t *testing.T, now *time.Time, store stream.Reader, change ...func(*config.Config)) *Service {
	t.Helper()
	var c func(*config.Config)
	if len(change) > 0 {
		c = change[0]
	}
	s := New(stagetest.Env(t, now, c))
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	s.read, s.events = store, stagetest.NewLog()
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

// TestFollowUpReachesEscalationTargets: an authority that received the
// earlier notice by escalation (an urgent delivery of de-bka left
// unacknowledged was copied to ie-garda) is one of its recipients: a
// follow-up goes to it too, with basis follow_up in its delivery and in
// the stored decision; before any escalation it does not; a failure to
// read the escalations is retried, never routed without them.
func TestFollowUpReachesEscalationTargets(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	store := stagetest.NewStore()
	s := newStage(t, &now, store, escalatesToGarda)
	log := s.events.(*stagetest.Log)
	first, data := stagetest.Record(t, "ref-esc-1", "DE", "DE", true, now.Add(-time.Hour))
	routed, err := s.stage(context.Background(), stream.Input{Subject: stream.NoticeSubject(first.ID), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	store.Put(routed...)
	log.Put(routed...)
	later, _ := stagetest.Record(t, "ref-esc-2", "FR", "FR", false, now)
	later.FollowUpOfID = first.ID
	laterData, err := json.Marshal(later)
	if err != nil {
		t.Fatal(err)
	}
	in := stream.Input{Subject: stream.NoticeSubject(later.ID), Data: laterData}
	route := func() (map[string][]string, []string) {
		t.Helper()
		out, err := s.stage(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		grounds := map[string][]string{}
		for _, m := range out {
			auth, _, _, ok := stream.ParseDeliverySubject(m.Subject)
			if !ok {
				continue
			}
			d, fw := forwarded(t, m)
			if fw.FollowUpOf != first.ID || d.Type != event.KindNotice {
				t.Errorf("delivery to %s: type %s, follow_up_of %q", auth, d.Type, fw.FollowUpOf)
			}
			for _, g := range fw.Grounds {
				grounds[auth] = append(grounds[auth], g.Basis+"/"+g.Evidence)
			}
		}
		var decided []string
		for _, e := range stagetest.Events(t, out) {
			if e.Type == event.Decided {
				for _, r := range e.Decision.Recipients {
					decided = append(decided, r.Authority)
				}
			}
		}
		return grounds, decided
	}

	// Not escalated (yet): the earlier recipient and the notice's own.
	grounds, decided := route()
	if want := []string{"de-bka", "fr-police"}; !slices.Equal(decided, want) || len(grounds) != 2 {
		t.Errorf("before the escalation: decided %q, want %q; deliveries %v", decided, want, grounds)
	}

	// de-bka's delivery escalated to ie-garda: ie-garda receives the
	// follow-up too.
	log.Put(escalatedToGarda(t, s, first, now))
	grounds, decided = route()
	if want := []string{"de-bka", "fr-police", "ie-garda"}; !slices.Equal(decided, want) {
		t.Errorf("after the escalation: decided %q, want %q", decided, want)
	}
	for auth, want := range map[string][]string{
		"de-bka": {"follow_up/follow_up_of"}, "ie-garda": {"follow_up/follow_up_of"}, "fr-police": {"offence/declared", "suspect/declared"},
	} {
		if !slices.Equal(grounds[auth], want) {
			t.Errorf("%s: grounds %q, want %q", auth, grounds[auth], want)
		}
	}

	filter := event.SubjectOf(s.env.Pseudonyms.Notice(first.ID), event.Queued, "*", "*")
	log.Errs[filter] = fault.Errorf("get", fault.Unavailable, "NATS is down")
	if out, err := s.stage(context.Background(), in); !fault.Is(err, fault.Unavailable) || out != nil {
		t.Errorf("reading the escalations failing: %v, %d outputs", err, len(out))
	}
}

// escalatesToGarda makes ie-garda de-bka's escalation target.
func escalatesToGarda(c *config.Config) {
	for i := range c.Authorities {
		if c.Authorities[i].ID == "de-bka" {
			c.Authorities[i].Escalation = "ie-garda"
		}
	}
}

// escalatedToGarda is the queued event of the escalation copy of rec to
// ie-garda, as the escalation service stores it.
func escalatedToGarda(t *testing.T, s *Service, rec *notice.Record, now time.Time) stream.Message {
	t.Helper()
	q := event.Event{Type: event.Queued, Notice: s.env.Pseudonyms.Notice(rec.ID), Time: now.Add(-time.Minute),
		Actor: "escalation", Platform: rec.Platform, BodySHA256: rec.BodySHA256, Priority: "urgent",
		Recipient: "ie-garda", Kind: event.KindEscalation, Delivery: "copy-1"}
	qm, err := q.Message()
	if err != nil {
		t.Fatal(err)
	}
	return qm
}

// TestWithdrawalReachesEscalationTargets: the withdrawal of a notice also
// goes to the authority that received a copy of it by escalation, as a
// withdrawal delivery carrying the notice; before any escalation, only to
// the recipients of the decision.
func TestWithdrawalReachesEscalationTargets(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	store := stagetest.NewStore()
	s := newStage(t, &now, store, escalatesToGarda)
	rec, data := stagetest.Record(t, "ref-esc-3", "DE", "DE", true, now.Add(-time.Hour))
	routed, err := s.stage(context.Background(), stream.Input{Subject: stream.NoticeSubject(rec.ID), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	store.Put(routed...)
	store.Put(stream.Message{Subject: stream.NoticeSubject(rec.ID), Data: data})
	wd, _ := json.Marshal(notice.Withdrawal{V: 1, NoticeID: rec.ID, Platform: rec.Platform, Reference: rec.Reference,
		Reason: "mistake", RequestedAt: module.Timestamp(now)})
	in := stream.Input{Subject: stream.WithdrawSubject(rec.ID), Data: wd}
	withdrawn := func() []string {
		t.Helper()
		out, err := s.stage(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		var to []string
		for _, m := range out {
			if auth, _, _, ok := stream.ParseDeliverySubject(m.Subject); ok {
				d, fw := forwarded(t, m)
				if d.Type != event.KindWithdrawal || fw.Withdrawal == nil || fw.Reference != "ref-esc-3" {
					t.Errorf("delivery to %s: type %s, %+v", auth, d.Type, fw)
				}
				to = append(to, auth)
			}
		}
		return to
	}
	if got := withdrawn(); !slices.Equal(got, []string{"de-bka"}) {
		t.Errorf("before the escalation: withdrawals to %q", got)
	}
	s.events.(*stagetest.Log).Put(escalatedToGarda(t, s, rec, now))
	if got := withdrawn(); !slices.Equal(got, []string{"de-bka", "ie-garda"}) {
		t.Errorf("after the escalation: withdrawals to %q, want de-bka and ie-garda", got)
	}
}
