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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	total := o.notices
	if o.duration > 0 {
		total = 1 << 24 // bounded by time
	}

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, TLSClientConfig: o.tls},
		CheckRedirect: refuseRedirect}
	type acceptance struct {
		at      time.Time
		latency time.Duration
		states  []string // the recipients it must reach, by country
	}
	// The books of the run, kept so that it also checks the guarantees:
	// every accepted notice reaches each of its recipients, under one
	// delivery id per (notice, recipient), also across a crash of the relay.
	var (
		mu        sync.Mutex
		accepted  = map[string]acceptance{} // notice id -> its acceptance
		firstSeen = map[string]time.Time{}  // notice id|country -> when first handed out
		idOf      = map[string]string{}     // notice id|country -> delivery id
		ackedPair = map[string]bool{}       // notice id|country -> acknowledged
		expected  atomic.Int64              // deliveries expected from accepted notices
		acked     atomic.Int64              // distinct (notice, recipient) pairs acknowledged
		handouts  atomic.Int64
		unseen    atomic.Int64 // first seen here, but fetched before (Attempt > 1)
		twoIDs    atomic.Int64
		submitted atomic.Int64
		rejected  atomic.Int64
		retried   atomic.Int64
		lastAck   atomic.Int64
	)
	// With several URLs, a submission goes to one of them and is retried
	// on the next, as a platform behind a load balancer would see it.
	var platforms []*inboxclient.Client
	for _, u := range t.urls {
		platforms = append(platforms, inboxclient.New(u, t.platformToken, 0, client))
	}
	submit := func(i int, n benchNotice) {
		start := time.Now()
		for try := i; ; try++ {
			data, code, err := platforms[try%len(platforms)].Do(ctx, http.MethodPost, "/v1/notices", n.body)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				retried.Add(1)
				time.Sleep(50 * time.Millisecond) // the relay is down: retry, as a platform would
				continue
			}
			var a struct{ ID string }
			_ = json.Unmarshal(data, &a)
			switch code {
			case http.StatusAccepted, http.StatusOK:
				now := time.Now()
				mu.Lock()
				_, again := accepted[a.ID]
				if !again {
					accepted[a.ID] = acceptance{at: now, latency: now.Sub(start), states: n.states}
				}
				mu.Unlock()
				if !again {
					expected.Add(int64(len(n.states)))
					submitted.Add(1)
				}
				return
			case http.StatusServiceUnavailable, http.StatusBadGateway:
				retried.Add(1)
				time.Sleep(100 * time.Millisecond) // back-pressure: retry, as a platform would
			case http.StatusTooManyRequests:
				// Over the platform's share (limits.per_caller): retry after
				// Retry-After, which is whole seconds, at least one.
				retried.Add(1)
				time.Sleep(time.Second)
			default:
				rejected.Add(1)
				return
			}
		}
	}

	start := time.Now()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	if o.duration > 0 {
		var cancel context.CancelFunc
		loadCtx, cancel = context.WithTimeout(loadCtx, o.duration)
		defer cancel()
	}
	var next atomic.Int64
	take := func() (int, benchNotice, bool) {
		i := next.Add(1) - 1
		if loadCtx.Err() != nil || int(i) >= total {
			return 0, benchNotice{}, false
		}
		return int(i), makeNotice(int(i), states, o.seed), true
	}
	var load sync.WaitGroup
	if o.rate > 0 {
		sem := make(chan struct{}, o.clients)
		load.Add(1)
		go func() {
			defer load.Done()
			interval := time.Duration(float64(time.Second) / o.rate)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				i, n, ok := take()
				if !ok {
					return
				}
				select {
				case <-tick.C:
				case <-loadCtx.Done():
					return
				}
				sem <- struct{}{}
				load.Add(1)
				go func() {
					defer load.Done()
					defer func() { <-sem }()
					submit(i, n)
				}()
			}
		}()
	} else {
		for range o.clients {
			load.Add(1)
			go func() {
				defer load.Done()
				for {
					i, n, ok := take()
					if !ok {
						return
					}
					submit(i, n)
				}
			}()
		}
	}
	loadDone := make(chan struct{})
	go func() { load.Wait(); close(loadDone) }()

	// Drain every authority's inbox through the real API, acknowledging in bulk.
	drainCtx, stopDrain := context.WithCancel(ctx)
	defer stopDrain()
	var drain sync.WaitGroup
	k := 0
	for cc, tok := range t.authorities {
		drain.Add(1)
		k++
		go func(k int) {
			defer drain.Done()
			// Each fetch goes to the next URL: every relay hands out
			// deliveries, and an ack goes where its fetch went.
			var inboxes []httpSource
			for _, u := range t.urls {
				inboxes = append(inboxes, httpSource{inboxclient.New(u, tok, 100, client)})
			}
			for ; drainCtx.Err() == nil; k++ {
				inbox := inboxes[k%len(inboxes)]
				items, err := inbox.fetch(drainCtx)
				if err != nil || len(items) == 0 {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				now := time.Now()
				handouts.Add(int64(len(items)))
				ids := make([]string, len(items))
				mu.Lock()
				for i, it := range items {
					ids[i] = it.out.ID
					key := it.out.NoticeID + "|" + cc
					if prev, ok := idOf[key]; !ok {
						idOf[key] = it.out.ID
						firstSeen[key] = now
						if it.out.Attempt > 1 {
							// Fetched before, but never seen here: a
							// hand-out that failed, or a lease that a
							// relay or NATS failover released.
							unseen.Add(1)
						}
					} else if prev != it.out.ID {
						twoIDs.Add(1)
					}
				}
				mu.Unlock()
				// An ack answered 503 may have been recorded all the same:
				// then the delivery is not handed out again, so the ack is
				// sent again until it is answered, as a client must.
				statuses, err := inbox.Ack(drainCtx, ids)
				for err != nil && drainCtx.Err() == nil {
					time.Sleep(100 * time.Millisecond)
					statuses, err = inbox.Ack(drainCtx, ids)
				}
				if err != nil {
					continue
				}
				mu.Lock()
				n := 0
				for _, it := range items {
					key := it.out.NoticeID + "|" + cc
					if statuses[it.out.ID] == http.StatusNoContent && !ackedPair[key] {
						ackedPair[key] = true
						n++
					}
				}
				mu.Unlock()
				acked.Add(int64(n))
				lastAck.Store(time.Now().UnixNano())
			}
		}(k)
	}

	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	// missing returns the accepted notices that some recipient has not
	// acknowledged yet, and how many (notice, recipient) pairs that is.
	missing := func() (ids []string, pairs int) {
		mu.Lock()
		defer mu.Unlock()
		for id, a := range accepted {
			n := 0
			for _, cc := range a.states {
				if !ackedPair[id+"|"+cc] {
					n++
				}
			}
			if n > 0 {
				ids, pairs = append(ids, id), pairs+n
			}
		}
		return ids, pairs
	}
	// reconcile asks the relay for the status of notices still missing an
	// acknowledgement: an ack the relay recorded just before it crashed has
	// no answer, and the delivery is not handed out again.
	rounds := 0
	reconcile := func() {
		rounds++ // each round asks the next URL, in case one is down
		ids, _ := missing()
		for _, id := range ids {
			rs, err := benchStatus(ctx, platforms[rounds%len(platforms)], id)
			if err != nil {
				return
			}
			mu.Lock()
			for _, cc := range accepted[id].states {
				if key := id + "|" + cc; rs[cc] == "acknowledged" && !ackedPair[key] {
					ackedPair[key] = true
					acked.Add(1)
				}
			}
			mu.Unlock()
		}
	}
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
					time.Since(start).Seconds(), submitted.Load(), acked.Load(), expected.Load())
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if loadFinished && acked.Load() >= expected.Load() {
			if _, n := missing(); n == 0 {
				break
			}
		}
		if loadFinished && time.Since(loadDoneAt) > o.drainTimeout {
			break
		}
		if loadFinished && time.Since(time.Unix(0, lastAck.Load())) > 2*time.Second && time.Since(reconciled) > 2*time.Second {
			reconcile()
			reconciled = time.Now()
		}
	}
	stopDrain()
	drain.Wait()
	if tty {
		fmt.Fprintln(stderr)
	}
	end := time.Unix(0, lastAck.Load())
	res := &BenchResult{Notices: int(submitted.Load()), Deliveries: int(acked.Load()), Fsync: o.fsync,
		Clients: o.clients, Rate: o.rate, Rejected: int(rejected.Load()),
		Retried: int(retried.Load()), Redelivered: int(handouts.Load()) - len(idOf) + int(unseen.Load()), DuplicateDeliveryIDs: int(twoIDs.Load())}
	if o.url != "" {
		res.Fsync = "remote"
	}
	res.Seconds = end.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.NoticesPerSec = float64(res.Notices) / res.Seconds
	}
	_, res.Lost = missing()
	var acc, queued []time.Duration
	want := map[string]bool{}
	var acceptedAt []time.Time
	for id, a := range accepted {
		acc = append(acc, a.latency)
		acceptedAt = append(acceptedAt, a.at)
		for _, cc := range a.states {
			want[id+"|"+cc] = true
		}
	}
	for key, seen := range firstSeen {
		if !want[key] {
			res.Misrouted++ // a recipient the notice does not concern, or an unknown notice
			continue
		}
		id, _, _ := strings.Cut(key, "|")
		queued = append(queued, max(0, seen.Sub(accepted[id].at)))
	}
	res.AcceptP50ms, res.AcceptP99ms = percentileMS(acc, 50), percentileMS(acc, 99)
	res.StallMS = longestGapMS(start, acceptedAt)
	res.QueuedP50ms, res.QueuedP99ms = percentileMS(queued, 50), percentileMS(queued, 99)
	res.PeakRSSMB = peakRSSMB()
	if o.memprofile != "" {
		if f, err := os.Create(o.memprofile); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	if t.js != nil {
		res.Stages = stageTimes(ctx, t.js)
		var writes uint64
		for _, name := range []string{"NR_NOTICES", "NR_EVENTS", "NR_DELIVERIES", "KV_NR_STATUS"} {
			s, err := t.js.Stream(ctx, name)
			if err != nil {
				continue
			}
			writes += s.CachedInfo().State.LastSeq
		}
		if res.Notices > 0 {
			w := float64(writes) / float64(res.Notices)
			res.WritesPerNotice = &w
		}
	}
	return res, nil
}

// benchStatus returns the status of each recipient of a notice, by country.
func benchStatus(ctx context.Context, platform *inboxclient.Client, id string) (map[string]string, error) {
	data, code, err := platform.Do(ctx, http.MethodGet, "/v1/notices/"+id, nil)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("status of %s: HTTP %d", id, code)
	}
	var out struct {
		Recipients []struct {
			Country string `json:"country"`
			Status  string `json:"status"`
		} `json:"recipients"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	rs := map[string]string{}
	for _, r := range out.Recipients {
		rs[r.Country] = r.Status
	}
	return rs, nil
}

// longestGapMS is the longest time in ms between start and the first of
// times, or between two consecutive ones.
func longestGapMS(start time.Time, times []time.Time) float64 {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	prev := start
	for _, t := range times {
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return float64(gap.Microseconds()) / 1000
}

func percentileMS(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100
	i = min(max(i-1, 0), len(ds)-1)
	return float64(ds[i].Microseconds()) / 1000
}

// peakRSSMB is this process's peak resident set (VmHWM), in MB.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// stageTimes reads every status projection and returns p50 and p99 of each
// stage of a delivery's life, in ms.
func stageTimes(ctx context.Context, js jetstream.JetStream) map[string][2]float64 {
	kv, err := js.KeyValue(ctx, "NR_STATUS")
	if err != nil {
		return nil
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil
	}
	type projection struct {
		ReceivedAt string `json:"received_at"`
		Recipients []struct {
			Notice struct {
				QueuedAt       string `json:"queued_at"`
				DeliveredAt    string `json:"delivered_at"`
				AcknowledgedAt string `json:"acknowledged_at"`
			} `json:"notice"`
		} `json:"recipients"`
	}
	var routed, waited, acked []time.Duration
	parse := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	for k := range keys.Keys() {
		var p projection
		e, err := kv.Get(ctx, k)
		if err != nil || json.Unmarshal(e.Value(), &p) != nil {
			continue
		}
		rcv := parse(p.ReceivedAt)
		for _, r := range p.Recipients {
			q, d, a := parse(r.Notice.QueuedAt), parse(r.Notice.DeliveredAt), parse(r.Notice.AcknowledgedAt)
			if !q.IsZero() && !rcv.IsZero() {
				routed = append(routed, q.Sub(rcv))
			}
			if !d.IsZero() && !q.IsZero() {
				waited = append(waited, d.Sub(q))
			}
			if !a.IsZero() && !d.IsZero() {
				acked = append(acked, a.Sub(d))
			}
		}
	}
	return map[string][2]float64{
		"received_to_queued":   {percentileMS(routed, 50), percentileMS(routed, 99)},
		"queued_to_handed_out": {percentileMS(waited, 50), percentileMS(waited, 99)},
		"handed_out_to_acked":  {percentileMS(acked, 50), percentileMS(acked, 99)},
	}
}
