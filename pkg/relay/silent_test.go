package relay_test

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// silencer is a TCP proxy to a NATS server whose established connections
// can be made silent: bytes are swallowed in both directions and nothing
// is closed, as when the server is cut off the network. Connections made
// afterwards pass as before.
type silencer struct {
	ln       net.Listener
	upstream string
	epoch    atomic.Int64 // connections of an older epoch are silent
	mu       sync.Mutex
	conns    []net.Conn
}

func newSilencer(t *testing.T, upstream string) *silencer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silencer{ln: ln, upstream: upstream}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *silencer) url() string { return "nats://" + p.ln.Addr().String() }

// silence makes every connection established so far silent.
func (p *silencer) silence() { p.epoch.Add(1) }

func (p *silencer) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		epoch := p.epoch.Load()
		go p.pipe(u, c, epoch)
		go p.pipe(c, u, epoch)
	}
}

// pipe copies src to dst until the connection's epoch has passed, then
// reads and drops.
func (p *silencer) pipe(dst, src net.Conn, epoch int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.epoch.Load() == epoch {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestNATSServerGoneSilent cuts the relay's NATS connection off without
// closing it (a partitioned node, a dead host): the relay gives the
// connection up within seconds and reconnects (through the proxy, to the
// same server here; to another node in a cluster), instead of trusting it
// for minutes and answering 503 meanwhile.
func TestNATSServerGoneSilent(t *testing.T) {
	n := startNATS(t)
	p := newSilencer(t, n.addr)
	r := relaytest.Start(t, relaytest.Options{NATSURL: p.url()})
	r.Submit("examplenet", relaytest.Notice("silent-before", false, "AT", "", ""))

	silenced := time.Now()
	p.silence()
	relaytest.Eventually(t, 10*time.Second, "/readyz 503 while the server is silent", func() bool {
		return readyz(r) == http.StatusServiceUnavailable
	})
	// Two unanswered pings 2 s apart, the third tick gives up: about 6 s,
	// then the reconnect and the readiness probe's next second.
	relaytest.Eventually(t, 15*time.Second-time.Since(silenced), "/readyz 200 on a new connection", func() bool {
		return readyz(r) == http.StatusOK
	})
	t.Logf("ready again %v after the connection went silent", time.Since(silenced).Round(time.Millisecond))
	if resp := r.Do("POST", "/v1/notices", "platform:examplenet", relaytest.Notice("silent-after", false, "AT", "", "")); resp.Status != http.StatusAccepted {
		t.Fatalf("submission after the reconnect: %s", resp)
	}
	if got := r.InboxUntil("at-police", 2, 30*time.Second); len(got) != 2 {
		t.Errorf("%d deliveries, want both notices'", len(got))
	}
}
