package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/inboxclient"
	"github.com/noticerelay/noticerelay/pkg/relay"
)

// BenchResult is the one JSON line `noticerelay bench` prints.
type BenchResult struct {
	Notices         int      `json:"notices"`
	Deliveries      int      `json:"deliveries"`
	Seconds         float64  `json:"seconds"`
	NoticesPerSec   float64  `json:"notices_per_sec"`
	AcceptP50ms     float64  `json:"accept_p50_ms"`
	AcceptP99ms     float64  `json:"accept_p99_ms"`
	QueuedP50ms     float64  `json:"queued_p50_ms"`
	QueuedP99ms     float64  `json:"queued_p99_ms"`
	PeakRSSMB       float64  `json:"peak_rss_mb"`
	WritesPerNotice *float64 `json:"writes_per_notice"`
	Fsync           string   `json:"fsync"`
	Clients         int      `json:"clients"`
	Rate            float64  `json:"rate,omitempty"`
	Rejected        int      `json:"rejected"`
	// Retried counts submissions sent again after no answer, a 503 or a 429.
	Retried int `json:"retried"`
	// StallMS is the longest time, in ms, without an accepted submission
	// (202 or 200) while submitting: what a fault costs the platforms.
	StallMS float64 `json:"stall_ms"`
	// Redelivered counts hand-outs of a delivery already handed out (a
	// lease that ended or was released, a relay that restarted before the
	// ack), including those the run never saw the first time (the
	// delivery's attempt above 1: a failed hand-out, or a fetch lost in a
	// failover).
	Redelivered int `json:"redelivered"`
	// The guarantees, checked by the run; each must be 0. Lost: (notice,
	// recipient) pairs of accepted notices not acknowledged when the run
	// ended. Misrouted: deliveries to an authority the notice does not
	// concern. DuplicateDeliveryIDs: pairs handed out under a second id.
	Lost                 int `json:"lost"`
	Misrouted            int `json:"misrouted"`
	DuplicateDeliveryIDs int `json:"duplicate_delivery_ids"`
	// Stages (in-process runs) split accepted-to-acknowledged by the
	// times the status projection recorded: received to queued (routing),
	// queued to first handed out (waiting in the queue), handed out to
	// acknowledged (the drainer's round trip), p50 and p99 in ms.
	Stages map[string][2]float64 `json:"stages,omitempty"`
}

type benchOptions struct {
	url, platformToken, authorityTokens string
	notices, clients, authorities       int
	rate                                float64
	duration                            time.Duration
	fsync, data, cpuprofile, memprofile string
	drainTimeout                        time.Duration
	ca                                  string
	tls                                 *tls.Config // of the client, from ca
	services                            string
	seed                                uint64
}

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	var o benchOptions
	fs.StringVar(&o.url, "url", "", "bench a running relay at this base URL instead of starting one in-process (https://, or http:// to a loopback address); several, comma-separated, share the load and stand in for each other")
	fs.StringVar(&o.ca, "ca", "", "with --url: trust only the CA certificates in this PEM file")
	fs.StringVar(&o.platformToken, "platform-token", "", "with --url: the platform's bearer token")
	fs.StringVar(&o.authorityTokens, "authority-tokens", "", "with --url: comma-separated COUNTRY=TOKEN of the authorities to drain")
	fs.IntVar(&o.notices, "notices", 20000, "notices to submit (unless --duration)")
	fs.DurationVar(&o.duration, "duration", 0, "submit for this long instead of a fixed number of notices")
	fs.IntVar(&o.clients, "clients", 64, "concurrent submitting clients (closed loop), or the cap on requests in flight with --rate")
	fs.Float64Var(&o.rate, "rate", 0, "offer notices at this fixed rate per second (open loop)")
	fs.IntVar(&o.authorities, "authorities", 10, "in-process: how many Member States' authorities notices go to")
	fs.StringVar(&o.fsync, "fsync", "always", "in-process: always (sync_interval: always, as dev) or default (JetStream's default)")
	fs.StringVar(&o.data, "data", "", "in-process: data dir (default: a temporary one, removed afterwards)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap profile at the end of the run to this file")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated notices")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Minute, "after the last submission, how long to wait for every delivery before counting the rest as lost")
	fs.StringVar(&o.services, "services", "", "in-process: comma-separated services to run (default all), e.g. to measure what one costs")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if o.fsync != "always" && o.fsync != "default" {
		fmt.Fprintln(stderr, "noticerelay bench: --fsync must be always or default")
		return ExitUsage
	}
	if o.clients < 1 || o.notices < 1 || o.authorities < 1 || o.authorities > len(country.EU27) {
		fmt.Fprintln(stderr, "noticerelay bench: --clients, --notices and --authorities must be positive (authorities at most 27)")
		return ExitUsage
	}
	if o.url != "" {
		urls := strings.Split(o.url, ",")
		for i, u := range urls {
			var err error
			if urls[i], err = relayURL(strings.TrimSpace(u)); err != nil {
				fmt.Fprintf(stderr, "noticerelay bench: --url %v\n", err)
				return ExitUsage
			}
		}
		o.url = strings.Join(urls, ",")
	}
	var err error
	if o.tls, err = caTLS(o.ca); err != nil {
		fmt.Fprintf(stderr, "noticerelay bench: --ca: %v\n", err)
		return ExitUsage
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "noticerelay bench: %v\n", err)
			return ExitFailure
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "noticerelay bench: %v\n", err)
			return ExitFailure
		}
		defer pprof.StopCPUProfile()
	}
	res, err := runBench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "noticerelay bench: %v\n", err)
		return ExitFailure
	}
	line, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(line))
	if res.Lost > 0 || res.Misrouted > 0 || res.DuplicateDeliveryIDs > 0 {
		fmt.Fprintf(stderr, "noticerelay bench: guarantees broken: %d lost, %d misrouted, %d handed out under a second delivery id\n",
			res.Lost, res.Misrouted, res.DuplicateDeliveryIDs)
		return ExitFailure
	}
	return ExitOK
}

// benchTarget is the relay under load: its URLs and the tokens to use.
type benchTarget struct {
	urls          []string
	platform      string
	platformToken string
	authorities   map[string]string // country -> token
	js            jetstream.JetStream
	close         func()
}

func startBenchRelay(ctx context.Context, o benchOptions) (*benchTarget, error) {
	if o.url != "" {
		t := &benchTarget{platform: "", platformToken: o.platformToken, authorities: map[string]string{}, close: func() {}}
		t.urls = strings.Split(o.url, ",")
		for _, kv := range strings.Split(o.authorityTokens, ",") {
			cc, tok, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("--authority-tokens: want COUNTRY=TOKEN, got %q", kv)
			}
			t.authorities[strings.ToUpper(cc)] = tok
		}
		if t.platformToken == "" || len(t.authorities) == 0 {
			return nil, fmt.Errorf("--url needs --platform-token and --authority-tokens")
		}
		return t, nil
	}
	data := o.data
	cleanup := func() {}
	if data == "" {
		dir, err := os.MkdirTemp("", "noticerelay-bench-")
		if err != nil {
			return nil, err
		}
		data, cleanup = dir, func() { os.RemoveAll(dir) }
	}
	t := &benchTarget{platform: "bench", platformToken: config.NewToken(), authorities: map[string]string{}}
	c := &config.Config{MemberStates: "EU27", Platforms: []config.Platform{{ID: t.platform, Name: "Bench",
		Tokens: []config.Token{config.Digest(t.platformToken)}, Establishment: "IE"}}}
	for _, cc := range country.EU27[:o.authorities] {
		tok := config.NewToken()
		t.authorities[cc] = tok
		c.Authorities = append(c.Authorities, config.Authority{ID: config.DemoAuthority(cc), Country: cc,
			Name: cc, Tokens: []config.Token{config.Digest(tok)}})
	}
	c.Limits.MaxInFlight = max(1024, 2*o.clients)
	cfg, err := config.Normalize(c)
	if err != nil {
		cleanup()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cleanup()
		return nil, err
	}
	var services []string
	if o.services != "" {
		services = strings.Split(o.services, ",")
	}
	r, err := relay.Start(ctx, relay.Options{Config: cfg, Embedded: true, DataDir: data,
		DefaultSync: o.fsync == "default", Log: zap.NewNop(), Listener: ln, Services: services})
	if err != nil {
		cleanup()
		return nil, err
	}
	js, err := jetstream.New(r.Conn())
	if err != nil {
		r.Close()
		cleanup()
		return nil, err
	}
	t.urls, t.js = []string{r.URL()}, js
	t.close = func() { r.Close(); cleanup() }
	return t, nil
}

// benchNotice is one generated notice: its body and the countries (each
// with an authority) it concerns.
type benchNotice struct {
	ref    string
	body   []byte
	states []string // the Member States it concerns: one recipient each
}

// makeNotice generates notice i of a run: deterministic from (seed, i), so
// that a run needs no memory for the notices it has not sent yet.
func makeNotice(i int, states []string, seed uint64) benchNotice {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	k := 1 + rng.IntN(min(3, len(states)))
	perm := rng.Perm(len(states))[:k]
	m := map[string]any{
		"reference":       fmt.Sprintf("BENCH-%d-%08d", seed, i),
		"category":        "human_trafficking",
		"exploitation":    "labour",
		"imminent_threat": rng.IntN(10) == 0,
		"suspicion":       benchFiller[:1500+rng.IntN(100)],
		"occurred_at":     "2026-11-20T14:03:00+01:00",
		"contact":         map[string]any{"name": "Trust & Safety", "email": "tns@example.net"},
	}
	roles := []string{"locations", "suspects", "victims"}
	concerned := make([]string, 0, k)
	for j, p := range perm {
		m[roles[j]] = []any{map[string]any{"country": states[p]}}
		concerned = append(concerned, states[p])
	}
	body, _ := json.Marshal(m)
	return benchNotice{ref: m["reference"].(string), body: body, states: concerned}
}

// benchFiller makes a notice about 2 KB, like a real one with a paragraph
// of explanation.
var benchFiller = strings.Repeat("The account contacted several users with offers of work abroad and asked for passport scans. ", 20)

// runBench starts (or reaches) the relay, submits the notices while every
// authority drains its inbox, waits for every delivery, and reports.
func runBench(ctx context.Context, o benchOptions, stderr io.Writer) (*BenchResult, error) {
	t, err := startBenchRelay(ctx, o)
	if err != nil {
		return nil, err
	}
	defer t.close()
	var states []string
	for cc := range t.authorities {
		if cc != country.Europol { // drained, but no notice names "EU" as a country
			states = append(states, cc)
		}
	}
	slices.Sort(states)
	if len(states) == 0 {
		return nil, fmt.Errorf("no Member State authority to send notices to")
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, TLSClientConfig: o.tls},
		CheckRedirect: refuseRedirect}
	books := newBenchBooks()
	load := &benchLoad{o: o, books: books, states: states, total: o.notices}
	if o.duration > 0 {
		load.total = 1 << 24 // bounded by time
	}
	for _, u := range t.urls {
		load.platforms = append(load.platforms, inboxclient.New(u, t.platformToken, 0, client))
	}

	start := time.Now()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	if o.duration > 0 {
		var cancel context.CancelFunc
		loadCtx, cancel = context.WithTimeout(loadCtx, o.duration)
		defer cancel()
	}
	loadDone := load.run(ctx, loadCtx)

	drainCtx, stopDrain := context.WithCancel(ctx)
	defer stopDrain()
	var drains sync.WaitGroup
	k := 0
	for cc, tok := range t.authorities {
		k++
		var inboxes []*inboxclient.Client
		for _, u := range t.urls {
			inboxes = append(inboxes, inboxclient.New(u, tok, 100, client))
		}
		drains.Add(1)
		go func(k int) { defer drains.Done(); drain(drainCtx, books, cc, inboxes, k) }(k)
	}

	if err := awaitDeliveries(ctx, o, books, load.platforms, loadDone, start, stderr); err != nil {
		return nil, err
	}
	stopDrain()
	drains.Wait()
	return benchReport(ctx, o, t, books, start), nil
}

// awaitDeliveries waits until the load is over and every delivery is
// acknowledged, or the drain timeout passes, asking the relay for the
// status of notices whose acknowledgements went quiet, and shows progress
// on a terminal.
func awaitDeliveries(ctx context.Context, o benchOptions, books *benchBooks, platforms []*inboxclient.Client,
	loadDone <-chan struct{}, start time.Time, stderr io.Writer) error {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	if tty {
		defer fmt.Fprintln(stderr)
	}
	rounds := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	loadFinished := false
	var loadDoneAt, reconciled time.Time
	for ticks := 1; ; ticks++ {
		select {
		case <-loadDone:
			loadFinished, loadDoneAt = true, time.Now()
			loadDone = nil
		case <-tick.C:
			if tty && ticks%10 == 0 {
				fmt.Fprintf(stderr, "\r%6.0fs  accepted %d  acknowledged %d/%d deliveries   ",
					time.Since(start).Seconds(), books.submitted.Load(), books.acked.Load(), books.expected.Load())
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		if loadFinished && (books.done() || time.Since(loadDoneAt) > o.drainTimeout) {
			return nil
		}
		if loadFinished && time.Since(time.Unix(0, books.lastAck.Load())) > 2*time.Second && time.Since(reconciled) > 2*time.Second {
			rounds++ // each round asks the next URL, in case one is down
			reconcile(ctx, books, platforms[rounds%len(platforms)])
			reconciled = time.Now()
		}
	}
}

// reconcile asks the relay for the status of notices still missing an
// acknowledgement: an ack the relay recorded just before it crashed has no
// answer, and the delivery is not handed out again.
func reconcile(ctx context.Context, books *benchBooks, platform *inboxclient.Client) {
	ids, _ := books.missing()
	for _, id := range ids {
		rs, err := benchStatus(ctx, platform, id)
		if err != nil {
			return
		}
		books.reconciled(id, rs)
	}
}
