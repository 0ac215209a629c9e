package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/inboxclient"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// benchReport is the result of a finished run: the books, this process's
// peak memory, and (in-process) the stage times and writes per notice.
func benchReport(ctx context.Context, o benchOptions, t *benchTarget, books *benchBooks, start time.Time) *BenchResult {
	res := &BenchResult{Fsync: o.fsync, Clients: o.clients, Rate: o.rate}
	if o.url != "" {
		res.Fsync = "remote"
	}
	books.fill(res, start)
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
		for _, name := range []string{stream.Notices, stream.Events, stream.Deliveries, "KV_" + stream.StatusBucket} {
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
	return res
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
	kv, err := js.KeyValue(ctx, stream.StatusBucket)
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
