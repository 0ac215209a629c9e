package relay_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// handedOut leases authority's inbox until done says that what it was
// handed out so far (keyed "type notice_id") is enough, acknowledging every
// delivery but attachments, and returns it. A delivery handed out twice
// fails the test.
func handedOut(t *testing.T, r *relaytest.Relay, authority string, done func(map[string]relaytest.Delivery) bool) map[string]relaytest.Delivery {
	t.Helper()
	got := map[string]relaytest.Delivery{}
	ids := map[string]bool{}
	relaytest.Eventually(t, wait, "the deliveries expected for "+authority, func() bool {
		for _, d := range r.Inbox(authority, 100) {
			if ids[d.ID] {
				t.Errorf("%s: delivery %s handed out again", authority, d.ID)
			}
			ids[d.ID] = true
			key := d.Type + " " + d.NoticeID
			if d.Type == "attachment" {
				key += " " + d.ID
			} else {
				r.Ack(authority, d.ID)
			}
			got[key] = d
		}
		return done(got)
	})
	return got
}

// checkFollowUp checks that d is a follow-up of earlier received for
// having received earlier: basis follow_up, follow_up_of naming it.
func checkFollowUp(t *testing.T, what string, d relaytest.Delivery, earlier string) {
	t.Helper()
	if got := groundsOf(t, d); !slices.Equal(got, []string{"follow_up/follow_up_of"}) {
		t.Errorf("%s: grounds %q, want follow_up/follow_up_of", what, got)
	}
	if got, _ := d.Notice["follow_up_of"].(string); got != earlier {
		t.Errorf("%s: follow_up_of %q, want %q", what, got, earlier)
	}
	if d.Notice["escalation"] != nil {
		t.Errorf("%s: carries an escalation (%v); it is a follow-up", what, d.Notice["escalation"])
	}
}

// TestEscalationReachesEarlierFollowUp: a follow-up (with a file) of an
// urgent notice is routed to de-bka and fr-police while de-bka's deadline
// runs; when the notice is escalated to europol, europol gets the
// escalation copy, the follow-up (basis follow_up, naming the notice) and
// the follow-up's file, each once, and the follow-up's status lists it;
// the follow-up's withdrawal reaches europol as well.
func TestEscalationReachesEarlierFollowUp(t *testing.T) {
	const deadline = 5 * time.Second
	r := relaytest.Start(t, relaytest.Options{Config: escalatingToEuropol(deadline)})
	first := r.Submit("examplenet", relaytest.Notice("ESC-LATE-1", true, "", "DE", ""))
	fu := relaytest.Notice("ESC-LATE-2", false, "FR", "", "")
	fu["follow_up_of"] = "ESC-LATE-1"
	second := r.Submit("examplenet", fu)
	file := uploaded(t, r, second, "late.png", 100<<10, 41)
	relaytest.Eventually(t, wait, "the follow-up routed to de-bka and fr-police", func() bool {
		rs, _ := r.Status("examplenet", second)["recipients"].([]any)
		return len(rs) == 2
	})
	// What this test is about: the follow-up was routed before the
	// escalation, so routing could not send it to europol.
	for _, rc := range r.Status("examplenet", first)["recipients"].([]any) {
		if rc.(map[string]any)["escalated_at"] != nil {
			t.Fatalf("the follow-up was routed only after the escalation (deadline %v): this machine is too slow for the test", deadline)
		}
	}

	got := handedOut(t, r, "europol", func(got map[string]relaytest.Delivery) bool {
		return len(got) >= 3
	})
	if _, ok := got["escalation "+first]; !ok {
		t.Errorf("europol got no escalation copy of the notice: %v", keys(got))
	}
	d, ok := got["notice "+second]
	if !ok {
		t.Fatalf("europol got no follow-up: %v", keys(got))
	}
	checkFollowUp(t, "europol", d, first)
	for k, a := range got {
		if a.Type == "attachment" {
			receivedWhole(t, r, "europol", a, second, file)
		} else if k != "escalation "+first && k != "notice "+second {
			t.Errorf("europol got %s", k)
		}
	}
	relaytest.Eventually(t, wait, "europol among the follow-up's recipients", func() bool {
		rs, _ := r.Status("examplenet", second)["recipients"].([]any)
		return len(rs) == 3 && slices.ContainsFunc(rs, func(rc any) bool { return rc.(map[string]any)["authority"] == "europol" })
	})
	// Exactly one of each in europol's queue.
	count := map[string]int{}
	for _, q := range queuedDeliveries(t, r, "europol") {
		count[q.Type+" "+q.NoticeID]++
	}
	if len(count) != 3 || count["escalation "+first] != 1 || count["notice "+second] != 1 || count["attachment "+second] != 1 {
		t.Errorf("europol's queue: %v", count)
	}
	// Europol has the follow-up: its withdrawal reaches europol too.
	if resp := r.Do("POST", "/v1/notices/"+second+"/withdraw", "platform:examplenet", map[string]string{"reason": "mistake"}); resp.Status != http.StatusAccepted {
		t.Fatal(resp)
	}
	r.DeliveryUntil("europol", "withdrawal", second, wait)
}

// TestEscalationRacesFollowUps: follow-ups of an urgent notice submitted
// one by one from before de-bka's deadline until after it, so that some
// are routed before the escalation, some after, and some while it is
// stored, each reach europol exactly once (one delivery, one queued event)
// with basis follow_up, beside the escalation copy.
func TestEscalationRacesFollowUps(t *testing.T) {
	const deadline, n = 2 * time.Second, 12
	r := relaytest.Start(t, relaytest.Options{Config: escalatingToEuropol(deadline)})
	first := r.Submit("examplenet", relaytest.Notice("ESC-RACE-0", true, "", "DE", ""))
	start := time.Now()
	var ids []string
	for i := 1; i <= n; i++ {
		// From half the deadline to twice it.
		time.Sleep(time.Until(start.Add(deadline/2 + time.Duration(i)*deadline*3/(2*n))))
		fu := relaytest.Notice(fmt.Sprintf("ESC-RACE-%d", i), false, "FR", "", "")
		fu["follow_up_of"] = "ESC-RACE-0"
		ids = append(ids, r.Submit("examplenet", fu))
	}
	got := handedOut(t, r, "europol", func(got map[string]relaytest.Delivery) bool {
		return len(got) >= n+1
	})
	if _, ok := got["escalation "+first]; !ok {
		t.Errorf("europol got no escalation copy: %v", keys(got))
	}
	for i, id := range ids {
		d, ok := got["notice "+id]
		if !ok {
			t.Errorf("europol got no delivery of follow-up %d: %v", i+1, keys(got))
			continue
		}
		checkFollowUp(t, fmt.Sprintf("follow-up %d", i+1), d, first)
	}
	count := map[string]int{}
	for _, q := range queuedDeliveries(t, r, "europol") {
		count[q.Type+" "+q.NoticeID]++
	}
	for k, c := range count {
		if c != 1 {
			t.Errorf("europol's queue holds %d of %s", c, k)
		}
	}
	if len(count) != n+1 {
		t.Errorf("europol's queue holds %d deliveries, want %d", len(count), n+1)
	}
	if q := r.Events("nr.event.*.queued.europol.notice"); q != n {
		t.Errorf("%d queued events of follow-ups for europol, want %d", q, n)
	}
}

// keys lists the keys of what was handed out, for a failure message.
func keys(m map[string]relaytest.Delivery) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
