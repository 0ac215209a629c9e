package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/noticerelay/noticerelay/pkg/inboxclient"
)

// benchLoad submits the notices of a run as the platforms would: closed
// loop (o.clients each sending the next notice once the last is answered)
// or open loop (o.rate notices a second, at most o.clients in flight).
type benchLoad struct {
	o      benchOptions
	books  *benchBooks
	states []string // the Member States notices may concern
	total  int      // notices to send (bounded by time with --duration)
	// With several URLs, a submission goes to one of them and is retried
	// on the next, as a platform behind a load balancer would see it.
	platforms []*inboxclient.Client
	next      atomic.Int64
}

// run offers notices until total are sent or offer ends (the load's
// duration); done is closed when every submission is answered. A notice
// offered is sent until the relay answers it or ctx (the run) ends: one cut
// off when the load ends may be stored all the same, and its deliveries
// would then read as misrouted.
func (l *benchLoad) run(ctx, offer context.Context) (done <-chan struct{}) {
	var wg sync.WaitGroup
	if l.o.rate > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); l.openLoop(ctx, offer, &wg) }()
	} else {
		for range l.o.clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i, n, ok := l.take(offer)
					if !ok {
						return
					}
					l.submit(ctx, i, n)
				}
			}()
		}
	}
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// openLoop offers a notice every 1/rate seconds until offer ends, each in a
// goroutine of its own counted in wg and sent until answered or ctx ends.
func (l *benchLoad) openLoop(ctx, offer context.Context, wg *sync.WaitGroup) {
	sem := make(chan struct{}, l.o.clients)
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.o.rate))
	defer tick.Stop()
	for {
		i, n, ok := l.take(offer)
		if !ok {
			return
		}
		select {
		case <-tick.C:
		case <-offer.Done():
			return
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.submit(ctx, i, n)
		}()
	}
}

// take returns the next notice to send, if any.
func (l *benchLoad) take(ctx context.Context) (int, benchNotice, bool) {
	i := int(l.next.Add(1) - 1)
	if ctx.Err() != nil || i >= l.total {
		return 0, benchNotice{}, false
	}
	return i, makeNotice(i, l.states, l.o.seed), true
}

// submit sends notice i until the relay answers it (retrying after no
// answer or a 503, as a platform would) and records the answer.
func (l *benchLoad) submit(ctx context.Context, i int, n benchNotice) {
	start := time.Now()
	for try := i; ; try++ {
		data, code, err := l.platforms[try%len(l.platforms)].Do(ctx, http.MethodPost, "/v1/notices", n.body)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.books.retried.Add(1)
			time.Sleep(50 * time.Millisecond) // the relay is down: retry, as a platform would
			continue
		}
		switch code {
		case http.StatusAccepted, http.StatusOK:
			var a struct{ ID string }
			_ = json.Unmarshal(data, &a)
			l.books.accept(a.ID, time.Since(start), n.states)
			return
		case http.StatusServiceUnavailable, http.StatusBadGateway:
			l.books.retried.Add(1)
			time.Sleep(100 * time.Millisecond) // back-pressure: retry, as a platform would
		case http.StatusTooManyRequests:
			// Over the platform's share (limits.per_caller): retry after
			// Retry-After, which is whole seconds, at least one.
			l.books.retried.Add(1)
			time.Sleep(time.Second)
		default:
			l.books.rejected.Add(1)
			return
		}
	}
}

// drain empties the inbox of the authority of cc through the real API,
// acknowledging in bulk, until ctx ends. Each fetch goes to the next URL
// (starting at the k-th): every relay hands out deliveries, and an ack goes
// where its fetch went.
func drain(ctx context.Context, books *benchBooks, cc string, inboxes []*inboxclient.Client, k int) {
	for ; ctx.Err() == nil; k++ {
		inbox := inboxes[k%len(inboxes)]
		outs, err := inbox.Fetch(ctx)
		if err != nil || len(outs) == 0 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		books.handedOut(cc, outs)
		ids := make([]string, len(outs))
		for i, d := range outs {
			ids[i] = d.ID
		}
		// An ack answered 503 may have been recorded all the same: then the
		// delivery is not handed out again, so the ack is sent again until
		// it is answered, as a client must.
		statuses, err := inbox.Ack(ctx, ids)
		for err != nil && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			statuses, err = inbox.Ack(ctx, ids)
		}
		if err != nil {
			continue
		}
		books.acknowledged(cc, outs, statuses)
	}
}
