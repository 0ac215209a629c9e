package cli

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/noticerelay/noticerelay/pkg/delivery"
)

// benchBooks are the books of a bench run, kept so that it also checks the
// guarantees: every accepted notice reaches each of its recipients, under
// one delivery id per (notice, recipient), also across a crash of the relay.
// Pairs are keyed "notice id|country". Safe for concurrent use.
type benchBooks struct {
	mu        sync.Mutex
	accepted  map[string]acceptance // notice id -> its acceptance
	firstSeen map[string]time.Time  // pair -> when first handed out
	idOf      map[string]string     // pair -> delivery id
	ackedPair map[string]bool       // pair -> acknowledged

	expected  atomic.Int64 // deliveries expected from accepted notices
	acked     atomic.Int64 // distinct pairs acknowledged
	handouts  atomic.Int64
	unseen    atomic.Int64 // first seen here, but fetched before (Attempt > 1)
	twoIDs    atomic.Int64
	submitted atomic.Int64
	rejected  atomic.Int64
	retried   atomic.Int64
	lastAck   atomic.Int64 // UnixNano of the last acknowledgement
}

// acceptance is when a notice was accepted and whom it must reach.
type acceptance struct {
	at      time.Time
	latency time.Duration
	states  []string // the recipients it must reach, by country
}

func newBenchBooks() *benchBooks {
	return &benchBooks{accepted: map[string]acceptance{}, firstSeen: map[string]time.Time{},
		idOf: map[string]string{}, ackedPair: map[string]bool{}}
}

func pairKey(noticeID, country string) string { return noticeID + "|" + country }

// accept records notice id accepted (202 or 200) after latency; a second
// answer for the same id changes nothing.
func (b *benchBooks) accept(id string, latency time.Duration, states []string) {
	now := time.Now()
	b.mu.Lock()
	_, again := b.accepted[id]
	if !again {
		b.accepted[id] = acceptance{at: now, latency: latency, states: states}
	}
	b.mu.Unlock()
	if !again {
		b.expected.Add(int64(len(states)))
		b.submitted.Add(1)
	}
}

// handedOut records deliveries handed out to the authority of cc.
func (b *benchBooks) handedOut(cc string, outs []delivery.Out) {
	now := time.Now()
	b.handouts.Add(int64(len(outs)))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range outs {
		key := pairKey(d.NoticeID, cc)
		if prev, ok := b.idOf[key]; !ok {
			b.idOf[key] = d.ID
			b.firstSeen[key] = now
			if d.Attempt > 1 {
				// Fetched before, but never seen here: a hand-out that
				// failed, or a lease that a relay or NATS failover released.
				b.unseen.Add(1)
			}
		} else if prev != d.ID {
			b.twoIDs.Add(1)
		}
	}
}

// acknowledged records the answers to an acknowledgement of outs by the
// authority of cc.
func (b *benchBooks) acknowledged(cc string, outs []delivery.Out, statuses map[string]int) {
	b.mu.Lock()
	n := 0
	for _, d := range outs {
		if statuses[d.ID] == http.StatusNoContent && b.markAcked(pairKey(d.NoticeID, cc)) {
			n++
		}
	}
	b.mu.Unlock()
	b.acked.Add(int64(n))
	b.lastAck.Store(time.Now().UnixNano())
}

// markAcked marks a pair acknowledged, reporting whether it was not yet;
// b.mu is held.
func (b *benchBooks) markAcked(key string) bool {
	if b.ackedPair[key] {
		return false
	}
	b.ackedPair[key] = true
	return true
}

// reconciled records the recipients' statuses the relay reports for
// notice id (country -> status): an ack the relay recorded just before it
// crashed has no answer, and the delivery is not handed out again.
func (b *benchBooks) reconciled(id string, statuses map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cc := range b.accepted[id].states {
		if statuses[cc] == "acknowledged" && b.markAcked(pairKey(id, cc)) {
			b.acked.Add(1)
		}
	}
}

// missing returns the accepted notices that some recipient has not
// acknowledged yet, and how many (notice, recipient) pairs that is.
func (b *benchBooks) missing() (ids []string, pairs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, a := range b.accepted {
		n := 0
		for _, cc := range a.states {
			if !b.ackedPair[pairKey(id, cc)] {
				n++
			}
		}
		if n > 0 {
			ids, pairs = append(ids, id), pairs+n
		}
	}
	return ids, pairs
}

// done reports whether every expected delivery is acknowledged.
func (b *benchBooks) done() bool {
	if b.acked.Load() < b.expected.Load() {
		return false
	}
	_, n := b.missing()
	return n == 0
}

// fill sets the counts and the guarantees of res from the books, and the
// latencies measured since start. The run is over: nothing writes any more.
func (b *benchBooks) fill(res *BenchResult, start time.Time) {
	res.Notices, res.Deliveries = int(b.submitted.Load()), int(b.acked.Load())
	res.Rejected, res.Retried = int(b.rejected.Load()), int(b.retried.Load())
	res.Redelivered = int(b.handouts.Load()) - len(b.idOf) + int(b.unseen.Load())
	res.DuplicateDeliveryIDs = int(b.twoIDs.Load())
	res.Seconds = time.Unix(0, b.lastAck.Load()).Sub(start).Seconds()
	if res.Seconds > 0 {
		res.NoticesPerSec = float64(res.Notices) / res.Seconds
	}
	_, res.Lost = b.missing()
	var acc, queued []time.Duration
	want := map[string]bool{}
	var acceptedAt []time.Time
	for id, a := range b.accepted {
		acc = append(acc, a.latency)
		acceptedAt = append(acceptedAt, a.at)
		for _, cc := range a.states {
			want[pairKey(id, cc)] = true
		}
	}
	for key, seen := range b.firstSeen {
		if !want[key] {
			res.Misrouted++ // a recipient the notice does not concern, or an unknown notice
			continue
		}
		id, _, _ := strings.Cut(key, "|")
		queued = append(queued, max(0, seen.Sub(b.accepted[id].at)))
	}
	res.AcceptP50ms, res.AcceptP99ms = percentileMS(acc, 50), percentileMS(acc, 99)
	res.StallMS = longestGapMS(start, acceptedAt)
	res.QueuedP50ms, res.QueuedP99ms = percentileMS(queued, 50), percentileMS(queued, 99)
}
