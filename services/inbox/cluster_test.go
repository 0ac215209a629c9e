package inbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/services/inbox"
)

// handed is a delivery as GET /v1/inbox answers it, with its attempt.
type handed struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
}

func take(t *testing.T, r *relaytest.Relay, authority string) []handed {
	t.Helper()
	resp := r.Do("GET", "/v1/inbox?max=100", "authority:"+authority, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("inbox: %s", resp)
	}
	var out struct {
		Deliveries []handed `json:"deliveries"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Deliveries
}

func ids(ds []handed) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	slices.Sort(out)
	return out
}

// Issue 10, finding 7: on a 3-node cluster with the default 60 s lease,
// deliveries handed out by a relay stay with their caller while that relay
// runs, come back after inbox.Hold (20 s) when it dies, and at once when
// it shuts down gracefully; each time under the same delivery id, with an
// attempt that tells it was handed out before. Before, both waited the
// whole 60 s lease.
func TestLeasesReleasedOnCluster(t *testing.T) {
	c := relaytest.Cluster(t)
	o := relaytest.OnCluster(t, c)
	a, b := relaytest.Start(t, o), relaytest.Start(t, o)
	const n = 5
	for i := range n {
		a.Submit("examplenet", relaytest.Notice(fmt.Sprintf("crash-%d", i), i == 0, "DE", "", ""))
	}
	var first []handed
	handedOut := time.Now()
	relaytest.Eventually(t, 30*time.Second, "the deliveries handed out by a", func() bool {
		first = append(first, take(t, a, "de-bka")...)
		return len(first) >= n
	})
	// While a runs, its leases hold past the server's own hold.
	for end := time.Now().Add(inbox.Hold + 5*time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if got := take(t, b, "de-bka"); len(got) > 0 {
			t.Fatalf("%d deliveries leased by a running relay handed out again after %s", len(got), inbox.Hold)
		}
	}
	// a dies: its connection is gone, nothing released.
	a.Conn().Close()
	died := time.Now()
	var again []handed
	relaytest.Eventually(t, 45*time.Second, "the deliveries of the dead relay handed out again", func() bool {
		again = append(again, take(t, b, "de-bka")...)
		return len(again) >= n
	})
	waited, lease := time.Since(died), time.Since(handedOut)
	if !slices.Equal(ids(again), ids(first)) {
		t.Fatalf("handed out again %v, first %v", ids(again), ids(first))
	}
	for _, d := range again {
		if d.Attempt < 2 {
			t.Errorf("delivery %s handed out again with attempt %d", d.ID, d.Attempt)
		}
	}
	if waited > inbox.Hold+8*time.Second || lease > 55*time.Second {
		t.Errorf("the dead relay's deliveries came back %s after it died, %s after they were handed out", waited, lease)
	}
	for _, d := range again {
		if st := b.Ack("de-bka", d.ID); st != http.StatusNoContent {
			t.Fatalf("ack: %d", st)
		}
	}

	// A graceful shutdown releases what the relay handed out at once.
	for i := range n {
		b.Submit("examplenet", relaytest.Notice(fmt.Sprintf("stop-%d", i), false, "DE", "", ""))
	}
	var held []handed
	relaytest.Eventually(t, 30*time.Second, "the deliveries handed out by b", func() bool {
		held = append(held, take(t, b, "de-bka")...)
		return len(held) >= n
	})
	d := relaytest.Start(t, o)
	b.Stop()
	stopped := time.Now()
	var released []handed
	relaytest.Eventually(t, 10*time.Second, "the deliveries of the stopped relay handed out at once", func() bool {
		released = append(released, take(t, d, "de-bka")...)
		return len(released) >= n
	})
	if !slices.Equal(ids(released), ids(held)) {
		t.Fatalf("released %v, held %v", ids(released), ids(held))
	}
	for _, d := range released {
		if d.Attempt < 2 {
			t.Errorf("delivery %s released with attempt %d", d.ID, d.Attempt)
		}
	}
	t.Logf("a dead relay's leases came back %s after it died (%s after the hand-out), a stopped relay's after %s (lease 60 s, hold %s)",
		waited.Round(100*time.Millisecond), lease.Round(100*time.Millisecond), time.Since(stopped).Round(100*time.Millisecond), inbox.Hold)
}
