package status

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
)

// TestFoldOrderIndependentAndIdempotent: the projection's fold gives the
// same state whatever the order the events arrive in and however often
// each is redelivered, as the consumers' redeliveries, their two workers
// and a second relay's status service make them arrive.
func TestFoldOrderIndependentAndIdempotent(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }
	rec, data := stagetest.Record(t, "ref-1", "DE", "FR", true, t0)
	_, n, err := notice.DecodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	base := event.Event{Notice: "pseudonym", Platform: rec.Platform, BodySHA256: rec.BodySHA256, Priority: "urgent"}
	ev := func(typ event.Type, minutes int, recipient, kind string) func(*Projection) {
		e := base
		e.Type, e.Time, e.Recipient, e.Kind = typ, at(minutes), recipient, kind
		if typ == event.Decided {
			e.Decision = &jurisdiction.Decision{Priority: notice.Urgent, Recipients: []jurisdiction.Recipient{
				{Authority: "fr-police", Country: "FR", Grounds: []jurisdiction.Ground{{Basis: jurisdiction.BasisSuspect, Evidence: "suspects[0].country"}}},
				{Authority: "de-bka", Country: "DE", Grounds: []jurisdiction.Ground{{Basis: jurisdiction.BasisOffence, Evidence: "locations[0].country"}}},
				{Authority: "europol", Country: "EU"}}}
		}
		return func(p *Projection) { p.Apply(&e) }
	}
	steps := []func(*Projection){
		func(p *Projection) { p.Stored(rec, n) },
		ev(event.Accepted, 0, "", ""),
		ev(event.Decided, 1, "", ""),
	}
	for i, a := range []string{"fr-police", "de-bka", "europol"} {
		steps = append(steps, ev(event.Queued, 1, a, event.KindNotice), ev(event.Delivered, 2+i, a, event.KindNotice),
			ev(event.Queued, 20, a, event.KindWithdrawal))
	}
	steps = append(steps,
		ev(event.Acknowledged, 3, "de-bka", event.KindNotice),
		ev(event.Acknowledged, 9, "fr-police", event.KindNotice),
		ev(event.Escalated, 11, "europol", event.KindNotice),
		ev(event.Queued, 11, "nl-police", event.KindEscalation),
		ev(event.Queued, 12, "de-bka", event.KindMessage),
		ev(event.Withdrawn, 20, "", ""),
		ev(event.Delivered, 21, "de-bka", event.KindWithdrawal),
		// The escalation target is told of the withdrawal too: not a
		// recipient of the notice in its status.
		ev(event.Queued, 20, "nl-police", event.KindWithdrawal),
		ev(event.Delivered, 22, "nl-police", event.KindWithdrawal),
	)
	fold := func(order []int) string {
		var p Projection
		for _, i := range order {
			steps[i](&p)
		}
		b, err := json.Marshal(p.View())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(p)
		return string(b) + "\n" + string(raw)
	}
	inOrder := make([]int, len(steps))
	for i := range inOrder {
		inOrder[i] = i
	}
	want := fold(inOrder)
	if twice := fold(append(inOrder, inOrder...)); twice != want {
		t.Fatalf("folding every event twice:\n got %s\nwant %s", twice, want)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for round := range 2000 {
		var order []int
		for i := range steps {
			for range 1 + rng.IntN(3) {
				order = append(order, i)
			}
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if got := fold(order); got != want {
			t.Fatalf("round %d, order %v:\n got %s\nwant %s", round, order, got, want)
		}
	}
	var p Projection
	for _, step := range steps {
		step(&p)
	}
	v := p.View()
	if v.Status != "withdrawn" || len(v.Recipients) != 3 || v.Recipients[0].Authority != "fr-police" ||
		v.Recipients[1].AcknowledgedAt == "" || v.Recipients[2].EscalatedAt == "" {
		t.Errorf("the folded state: %+v", v)
	}
}
