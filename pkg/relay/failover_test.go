package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// TestLeaderChangeStall changes leaders under a relay on a 3-node cluster
// while a platform keeps submitting: the routing consumer's leader steps
// down, then is killed, then the notice stream's leader is killed. After
// each change an urgent notice is submitted at once, and the time until it
// is in its recipient's queue is logged: the stall an urgent notice ("a
// threat to someone's life") sees after a leader change. A pull request
// lost with its consumer's leader is asked again only once the client has
// missed two of the consumer's heartbeats, which with nats.go's default
// pull options (30 s expiry, 15 s heartbeat) took up to 30 s; the bound
// here, 15 s, catches that and not a loaded machine. Every notice accepted
// with 202 must reach its authority exactly once.
func TestLeaderChangeStall(t *testing.T) {
	c := relaytest.Cluster(t)
	js := relaytest.JetStream(t)(c.Connect("leader-change-test"))
	o := relaytest.OnCluster(t, c)
	o.Services = []string{"status", "routing", "inbox", "intake"}
	r := relaytest.Start(t, o)
	settled := func() {
		t.Helper()
		relaytest.Eventually(t, 2*time.Minute, "the relay's consumers with a leader and a pull waiting", func() bool { return pulling(js) })
	}
	settled()

	// A platform submits a normal notice every 50 ms throughout.
	var mu sync.Mutex
	var accepted []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			resp := r.Do("POST", "/v1/notices", "platform:examplenet", relaytest.Notice(fmt.Sprintf("steady-%d", i), false, "AT", "", ""))
			if resp.Status == http.StatusAccepted {
				mu.Lock()
				accepted = append(accepted, resp.Map()["id"].(string))
				mu.Unlock()
			}
		}
	}()
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()

	const bound = 15 * time.Second
	var urgent []string
	measure := func(what string, change func()) {
		t.Helper()
		before := urgentWaiting(t, js)
		change()
		changed := time.Now()
		id := submitUntil(t, r, relaytest.Notice("urgent-after-"+strings.ReplaceAll(what, " ", "-"), true, "AT", "", ""), 30*time.Second)
		accepted := time.Since(changed)
		done := make(chan struct{})
		go func() {
			for _, at := range []time.Duration{5 * time.Second, 12 * time.Second} {
				select {
				case <-done:
					return
				case <-time.After(at - time.Since(changed)):
				}
				t.Logf("%s, %v after: %s", what, at, consumersState(js))
			}
		}()
		relaytest.Eventually(t, 60*time.Second, "the urgent delivery in at-police's queue", func() bool {
			return urgentWaiting(t, js) > before
		})
		inQueue := time.Since(changed)
		r.QueuedUntil("examplenet", 60*time.Second, id)
		close(done)
		stall := time.Since(changed)
		t.Logf("%s: urgent notice accepted %v, in at-police's queue %v, queued in its status %v after the change", what,
			accepted.Round(time.Millisecond), inQueue.Round(time.Millisecond), stall.Round(time.Millisecond))
		if stall > bound {
			t.Errorf("%s: urgent notice queued only %v after the change (bound %v)", what, stall.Round(time.Millisecond), bound)
		}
		urgent = append(urgent, id)
	}

	measure("routing consumer leader stepped down", func() {
		if _, err := js.Conn().Request(fmt.Sprintf("$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", stream.Notices, stream.RoutingConsumer), nil, 10*time.Second); err != nil {
			t.Fatalf("stepping the routing consumer's leader down: %v", err)
		}
	})
	settled()
	killLeader(t, c, js, r, "routing consumer leader killed", func(ctx context.Context) (*jetstream.ClusterInfo, error) {
		cons, err := js.Consumer(ctx, stream.Notices, stream.RoutingConsumer)
		if err != nil {
			return nil, err
		}
		return cons.CachedInfo().Cluster, nil
	}, measure)
	settled()
	killLeader(t, c, js, r, "notice stream leader killed", func(ctx context.Context) (*jetstream.ClusterInfo, error) {
		s, err := js.Stream(ctx, stream.Notices)
		if err != nil {
			return nil, err
		}
		return s.CachedInfo().Cluster, nil
	}, measure)
	settled()
	// Quorum lost and regained: the two nodes the relay is not connected
	// to stop for longer than a leader takes to notice (10 s), so that
	// every group steps down, and start again; timed from the moment
	// every stream has a quorum again.
	measure("quorum lost and regained", func() {
		var down []int
		for i := range 3 {
			if s := c.Node(i); s != nil && s.Name() != r.Conn().ConnectedServerName() {
				down = append(down, i)
			}
		}
		for _, i := range down {
			c.StopNode(i)
		}
		time.Sleep(12 * time.Second)
		for _, i := range down {
			if err := c.RestartNode(i); err != nil {
				t.Fatal(err)
			}
		}
		relaytest.Eventually(t, 2*time.Minute, "the streams with a quorum again", func() bool { return answers(js) })
	})

	halt()
	mu.Lock()
	want := append(append([]string{}, accepted...), urgent...)
	mu.Unlock()
	t.Logf("%d notices accepted during the changes", len(want))
	// Each accepted notice reaches at-police exactly once: every delivery
	// is acknowledged as it is read, so that none comes again for a lease
	// that ran out.
	seen := map[string]int{}
	read := func() {
		resp := r.Do("GET", "/v1/inbox?max=100", "authority:at-police", nil)
		if resp.Status == http.StatusServiceUnavailable {
			return // a consumer still electing its leader
		}
		var out struct{ Deliveries []relaytest.Delivery }
		if resp.Status != http.StatusOK || resp.JSON(&out) != nil {
			t.Fatalf("inbox: %s", resp)
		}
		for _, d := range out.Deliveries {
			seen[d.NoticeID]++
			if st := r.Ack("at-police", d.ID); st != http.StatusNoContent {
				t.Fatalf("ack %s: %d", d.ID, st)
			}
		}
	}
	relaytest.Eventually(t, 2*time.Minute, "every accepted notice delivered", func() bool {
		read()
		for _, id := range want {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	})
	// Late duplicates would come within a lease or an ack wait.
	time.Sleep(3 * time.Second)
	read()
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("notice %s delivered %d times", id, seen[id])
		}
	}
}

// killLeader stops the node that leads the group leader describes (not the
// node the relay is connected to: its reconnection would pull again at once
// and hide a lost pull), measures, and starts the node again.
func killLeader(t *testing.T, c *embedded.Cluster, js jetstream.JetStream, r *relaytest.Relay, what string,
	leader func(context.Context) (*jetstream.ClusterInfo, error), measure func(string, func())) {
	t.Helper()
	node := -1
	relaytest.Eventually(t, time.Minute, "a leader on a node the relay is not connected to", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ci, err := leader(ctx)
		if err != nil || ci == nil || ci.Leader == "" {
			return false
		}
		if ci.Leader == r.Conn().ConnectedServerName() {
			// Move the relay's connection instead.
			_ = r.Conn().ForceReconnect()
			return false
		}
		node, _ = c.NodeNamed(ci.Leader)
		return node >= 0
	})
	measure(what, func() { c.StopNode(node) })
	if err := c.RestartNode(node); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(time.Minute); err != nil {
		t.Fatal(err)
	}
}

// submitUntil posts notice n until it is accepted (a leader change may
// answer 503 for a while) and returns its id.
func submitUntil(t *testing.T, r *relaytest.Relay, n map[string]any, d time.Duration) string {
	t.Helper()
	var id string
	relaytest.Eventually(t, d, "the notice accepted", func() bool {
		resp := r.Do("POST", "/v1/notices", "platform:examplenet", n)
		switch resp.Status {
		case http.StatusAccepted:
			id = resp.Map()["id"].(string)
			return true
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			return false
		}
		t.Fatalf("submit: %s", resp)
		return false
	})
	return id
}

// consumersState describes the relay's consumers (leader, pending,
// handed out, waiting pulls), logged while a stall lasts.
func consumersState(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for _, name := range []string{stream.Notices, stream.Events, stream.Deliveries} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			out = append(out, name+": "+err.Error())
			continue
		}
		for ci := range st.ListConsumers(ctx).Info() {
			l := ""
			if ci.Cluster != nil {
				l = ci.Cluster.Leader
			}
			out = append(out, fmt.Sprintf("%s/%s leader=%s pending=%d ack=%d waiting=%d redeliv=%d", name, ci.Name, l, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.NumRedelivered))
		}
	}
	return strings.Join(out, "; ")
}

// urgentWaiting is how many deliveries at-police's urgent consumer holds
// (waiting or handed out); only the urgent notices the test submits go
// there.
func urgentWaiting(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	var n uint64
	relaytest.Eventually(t, time.Minute, "at-police's urgent consumer answering", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, stream.Deliveries, delivery.ConsumerName("at-police", delivery.Priorities()[0]))
		if err != nil {
			return false
		}
		ci := cons.CachedInfo()
		n = ci.NumPending + uint64(ci.NumAckPending)
		return true
	})
	return n
}
