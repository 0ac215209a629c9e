package relay_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/health"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// natsCluster is a 3-node NATS cluster with JetStream on fixed ports and
// store dirs, whose nodes a test stops and starts again.
type natsCluster struct {
	t       *testing.T
	dir     string
	clients []int
	routes  []int
	nodes   []*server.Server
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, dir: t.TempDir(), nodes: make([]*server.Server, 3)}
	for range 3 {
		c.clients = append(c.clients, freePort(t))
		c.routes = append(c.routes, freePort(t))
	}
	for i := range 3 {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range 3 {
			c.stop(i)
		}
	})
	return c
}

func (c *natsCluster) url() string {
	var urls []string
	for _, p := range c.clients {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	return strings.Join(urls, ",")
}

func (c *natsCluster) start(i int) {
	c.t.Helper()
	var routes []string
	for _, p := range c.routes {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	s, err := server.NewServer(&server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: c.clients[i],
		JetStream: true, StoreDir: filepath.Join(c.dir, fmt.Sprint(i)), NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
		Cluster: server.ClusterOpts{Name: "outage", Host: "127.0.0.1", Port: c.routes[i]},
		Routes:  server.RoutesFromStr(strings.Join(routes, ","))})
	if err != nil {
		c.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("NATS node %d not ready", i)
	}
	c.nodes[i] = s
}

func (c *natsCluster) stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// answers reports whether JetStream, asked from outside the relay, has a
// leader and a quorum of current replicas for each of the relay's streams.
func answers(js jetstream.JetStream) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, name := range []string{stream.Notices, stream.Events, stream.Deliveries} {
		s, err := js.Stream(ctx, name)
		if err != nil || health.Quorum(name, s.CachedInfo().Cluster) != nil {
			return false
		}
	}
	return true
}

// pulling reports whether the relay's routing and status consumers each
// have a leader and a pull request waiting at it.
func pulling(js jetstream.JetStream) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, sc := range [][2]string{{stream.Notices, stream.RoutingConsumer}, {stream.Notices, stream.StatusBodiesConsumer},
		{stream.Events, stream.StatusConsumer}} {
		cons, err := js.Consumer(ctx, sc[0], sc[1])
		if err != nil {
			return false
		}
		info := cons.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" || info.NumWaiting == 0 {
			return false
		}
	}
	return true
}

// TestQuorumLoss kills two of three NATS nodes under a relay: the survivor
// takes the relay's connection, but no stream has a quorum. The inbox must
// answer 503, not an empty list, submissions 503 in time, /readyz 503; once
// the nodes are back, every notice accepted before reaches the authority.
func TestQuorumLoss(t *testing.T) {
	c := startCluster(t)
	js := relaytest.JetStream(t)(nats.Connect(c.url(), nats.MaxReconnects(-1)))
	relaytest.Eventually(t, 30*time.Second, "a JetStream meta leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	r := relaytest.Start(t, relaytest.Options{NATSURL: c.url(), Services: []string{"status", "routing", "inbox", "intake"}})
	// On a cluster this young the streams' and consumers' groups may still
	// be electing their leaders when the relay starts pulling: a pull
	// request sent before its consumer has a leader goes unanswered, and
	// the client asks again only once it has missed the consumer's
	// heartbeats (up to 30 s with nats.go's defaults), which a loaded
	// machine made longer than the queueing wait below. Wait for the
	// condition, not a time: every stream with a quorum, and the routing
	// and status consumers each with a leader and a pull request waiting.
	relaytest.Eventually(t, 2*time.Minute, "the streams with a quorum and the relay's consumers pulling", func() bool {
		return answers(js) && pulling(js)
	})

	ids := submitRouted(t, r, "quorum", 3)

	c.stop(1)
	killed := time.Now() // the quorum goes with the second node
	c.stop(2)
	t.Logf("second node stopped in %v", time.Since(killed).Round(time.Millisecond))
	relaytest.Eventually(t, 10*time.Second-time.Since(killed), "/readyz 503 after quorum was lost", func() bool {
		return readyz(r) == http.StatusServiceUnavailable
	})
	t.Logf("/readyz 503 %v after quorum was lost: %s", time.Since(killed).Round(time.Millisecond),
		strings.TrimSpace(string(r.Do("GET", "/readyz", "", nil).Body)))
	// Not once an empty inbox: the queue holds the urgent delivery. The
	// reads are paced: an authority polling faster than its share
	// (limits.per_caller) would be answered 429.
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); <-poll.C {
		want503(t, "GET /v1/inbox without quorum", 6*time.Second, func() *relaytest.Response {
			return r.Do("GET", "/v1/inbox", "authority:at-police", nil)
		})
	}
	want503(t, "POST /v1/notices without quorum", 6*time.Second, func() *relaytest.Response {
		return r.Do("POST", "/v1/notices", "platform:examplenet", relaytest.Notice("quorum-during", true, "AT", "", ""))
	})
	if t.Failed() {
		return
	}

	c.start(1)
	c.start(2)
	relaytest.Eventually(t, 60*time.Second, "the streams to have a quorum again", func() bool { return answers(js) })
	back := time.Now()
	var last string
	for end := time.Now().Add(5 * time.Second); ; {
		resp := r.Do("GET", "/readyz", "", nil)
		if resp.Status == http.StatusOK {
			break
		}
		if last = string(resp.Body); time.Now().After(end) {
			t.Fatalf("/readyz not 200 5 s after quorum returned: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("/readyz 200 %v after the streams had a quorum again", time.Since(back).Round(time.Millisecond))
	// Consumers may still be electing leaders: a 503 now is honest, and
	// the authority reads again.
	seen := map[string]bool{}
	relaytest.Eventually(t, 60*time.Second, "every notice delivered", func() bool {
		resp := r.Do("GET", "/v1/inbox?max=100", "authority:at-police", nil)
		if resp.Status == http.StatusServiceUnavailable {
			return false
		}
		var out struct{ Deliveries []relaytest.Delivery }
		if resp.Status != http.StatusOK || resp.JSON(&out) != nil {
			t.Fatalf("inbox after quorum returned: %s", resp)
		}
		for _, d := range out.Deliveries {
			seen[d.NoticeID] = true
		}
		return len(seen) >= len(ids)
	})
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("notice %s accepted before the quorum loss was not delivered", id)
		}
	}
}
