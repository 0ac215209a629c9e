package relay_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// natsProcess is a NATS server on a fixed port and store dir that a test
// stops and starts again under a relay in `serve` mode.
type natsProcess struct {
	t    *testing.T
	dir  string
	addr string
	srv  *server.Server
}

func startNATS(t *testing.T) *natsProcess {
	t.Helper()
	n := &natsProcess{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	n.start(true)
	n.addr = n.srv.Addr().String()
	t.Cleanup(n.stop)
	return n
}

func (n *natsProcess) url() string { return "nats://" + n.addr }

// start starts the server, with or without JetStream, on the same port and
// store dir as before.
func (n *natsProcess) start(jetStream bool) {
	n.t.Helper()
	if jetStream {
		s, err := embedded.Start(embedded.Options{DataDir: n.dir, Listen: n.addr})
		if err != nil {
			n.t.Fatal(err)
		}
		n.srv = s.Server
		return
	}
	host, port, _ := net.SplitHostPort(n.addr)
	var p int
	_, _ = fmt.Sscan(port, &p)
	s, err := server.NewServer(&server.Options{Host: host, Port: p, NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
	if err != nil {
		n.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS server without JetStream not ready")
	}
	n.srv = s
}

func (n *natsProcess) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// within fails the test unless the request answers 503 with Retry-After
// and a reason that names the store, within limit.
func want503(t *testing.T, what string, limit time.Duration, do func() *relaytest.Response) {
	t.Helper()
	start := time.Now()
	resp := do()
	took := time.Since(start)
	if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%s during the outage: want 503 with Retry-After, got %s (Retry-After %q)", what, resp, resp.Header.Get("Retry-After"))
	}
	t.Logf("%s answered 503 in %v: %s", what, took.Round(time.Millisecond), resp.Body)
	if took > limit {
		t.Errorf("%s during the outage answered 503 after %v, want within %v", what, took, limit)
	}
	if detail, _ := resp.Map()["detail"].(string); !strings.Contains(detail, "unavailable") || strings.Contains(detail, "cannot store more") {
		t.Errorf("%s during the outage: the reason should say the store is unavailable, got %q", what, detail)
	}
}

func readyz(r *relaytest.Relay) int { return r.Do("GET", "/readyz", "", nil).Status }

// submitRouted submits one urgent and n normal notices for at-police and
// waits until each is queued (not just routed: decided), so that they
// wait in its queue; the urgent
// one's id comes first.
func submitRouted(t *testing.T, r *relaytest.Relay, ref string, n int) []string {
	t.Helper()
	ids := []string{r.Submit("examplenet", relaytest.Notice(ref+"-urgent", true, "AT", "", ""))}
	for i := range n {
		ids = append(ids, r.Submit("examplenet", relaytest.Notice(fmt.Sprintf("%s-%d", ref, i), false, "AT", "", "")))
	}
	r.QueuedUntil("examplenet", 20*time.Second, ids...)
	return ids
}

// TestNATSOutage kills the NATS server under a running relay, with an
// urgent delivery waiting unacknowledged: every API call answers 503 with
// Retry-After in time (never an empty inbox), /readyz follows JetStream
// within 5 s both ways, each state change is logged once, and after NATS
// restarts on the same store every accepted notice is delivered. Then the
// server comes back without JetStream: the relay is not ready either.
func TestNATSOutage(t *testing.T) {
	n := startNATS(t)
	logs, observed := observer.New(zapcore.InfoLevel)
	skey, _, err := auditlog.GenerateKeys(t.TempDir(), "outage.test/log")
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, relaytest.Options{NATSURL: n.url(), Log: logs,
		Config: func(c *config.Config) { c.Audit.SigningKey = skey }})

	ids := submitRouted(t, r, "outage", 5)
	urgent := ids[0]
	if readyz(r) != http.StatusOK {
		t.Fatal("relay not ready before the outage")
	}

	killed := time.Now()
	n.stop()
	want503(t, "GET /v1/inbox", 6*time.Second, func() *relaytest.Response {
		return r.Do("GET", "/v1/inbox", "authority:at-police", nil)
	})
	relaytest.Eventually(t, 5*time.Second-time.Since(killed), "/readyz 503 after NATS stopped", func() bool {
		return readyz(r) == http.StatusServiceUnavailable
	})
	t.Logf("/readyz 503 %v after NATS stopped", time.Since(killed).Round(time.Millisecond))
	if body := string(r.Do("GET", "/readyz", "", nil).Body); !strings.Contains(body, "NATS") {
		t.Errorf("/readyz during the outage should give the reason, got %q", body)
	}
	// Every API call answers 503 in time, many times over; the log must
	// not grow with them.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				want503(t, "GET /v1/inbox", 6*time.Second, func() *relaytest.Response {
					return r.Do("GET", "/v1/inbox", "authority:at-police", nil)
				})
			}
			want503(t, "POST /v1/notices", 6*time.Second, func() *relaytest.Response {
				return r.Do("POST", "/v1/notices", "platform:examplenet", relaytest.Notice(fmt.Sprintf("during-%d", i), true, "AT", "", ""))
			})
			want503(t, "GET /v1/notices/{id}", 6*time.Second, func() *relaytest.Response {
				return r.Do("GET", "/v1/notices/"+urgent, "platform:examplenet", nil)
			})
			want503(t, "POST /v1/inbox/ack", 6*time.Second, func() *relaytest.Response {
				return r.Do("POST", "/v1/inbox/ack", "authority:at-police", map[string]any{"ids": []string{uuid.NewString()}})
			})
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	n.start(true)
	restarted := time.Now()
	relaytest.Eventually(t, 5*time.Second, "/readyz 200 after NATS restarted", func() bool {
		return readyz(r) == http.StatusOK
	})
	t.Logf("ready again %v after NATS restarted", time.Since(restarted))

	// Nothing accepted before the outage is lost: every notice reaches the
	// authority, the urgent one first.
	got := r.InboxUntil("at-police", len(ids), 30*time.Second)
	seen := map[string]bool{}
	for _, d := range got {
		seen[d.NoticeID] = true
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("notice %s accepted before the outage was not delivered", id)
		}
	}
	if got[0].NoticeID != urgent {
		t.Errorf("the urgent delivery should come first, got %s", got[0].NoticeID)
	}

	// Restarted without JetStream: connected, but not able to store.
	n.stop()
	n.start(false)
	noJS := time.Now()
	relaytest.Eventually(t, 5*time.Second, "the relay reconnected to NATS without JetStream, and not ready", func() bool {
		resp := r.Do("GET", "/readyz", "", nil)
		return resp.Status == http.StatusServiceUnavailable && strings.Contains(string(resp.Body), "JetStream is not enabled")
	})
	t.Logf("/readyz says JetStream is not enabled %v after NATS restarted without it", time.Since(noJS).Round(time.Millisecond))
	want503(t, "GET /v1/inbox without JetStream", 6*time.Second, func() *relaytest.Response {
		return r.Do("GET", "/v1/inbox", "authority:at-police", nil)
	})
	want503(t, "POST /v1/notices without JetStream", 6*time.Second, func() *relaytest.Response {
		return r.Do("POST", "/v1/notices", "platform:examplenet", relaytest.Notice("no-js", true, "AT", "", ""))
	})
	n.stop()
	n.start(true)
	relaytest.Eventually(t, 5*time.Second, "/readyz 200 after JetStream returned", func() bool {
		return readyz(r) == http.StatusOK
	})

	// Each state change logged once; the failed requests summarised, not
	// logged one by one.
	count := func(msg string) int { return observed.FilterMessageSnippet(msg).Len() }
	// Three disconnections: the outage, and the restarts without and
	// with JetStream.
	if c := count("NATS connection lost"); c != 3 {
		t.Errorf("NATS connection lost logged %d times, want 3 (once per disconnection)", c)
	}
	if c := count("NATS connection restored"); c != 3 {
		t.Errorf("NATS connection restored logged %d times, want 3", c)
	}
	if c := count("JetStream unavailable"); c < 1 || c > 2 {
		t.Errorf("JetStream unavailable logged %d times, want once per outage", c)
	}
	if c := count("JetStream available again"); c < 1 || c > 2 {
		t.Errorf("JetStream available again logged %d times, want once per outage", c)
	}
	repeats := map[string]int{}
	for _, e := range observed.All() {
		if e.Level >= zapcore.WarnLevel {
			repeats[e.Message]++
		}
	}
	for msg, n := range repeats {
		if n > 3 {
			t.Errorf("%q logged %d times through three outages, want at most once each", msg, n)
		}
	}
}
