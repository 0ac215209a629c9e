package intake

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// rejections counts rejected submissions per platform over a window
// (audit.rejection_window) and records each platform's window as one
// rejected event with a count per reason code. One event per submission
// let a platform append 2,000 permanent leaves a second to the audit log
// with invalid bodies. The counts of the window in progress live in memory:
// a crash loses at most one window of counts, never a notice (every one of
// those submissions was answered with an error).
type rejections struct {
	env    *module.Env
	window time.Duration
	done   chan struct{}

	mu   sync.Mutex
	open map[rejectionKey]*event.Event
}

type rejectionKey struct {
	platform string
	start    time.Time
}

func newRejections(env *module.Env) *rejections {
	return &rejections{env: env, window: time.Duration(env.Config.Audit.RejectionWindow),
		done: make(chan struct{}), open: map[rejectionKey]*event.Event{}}
}

// add counts one rejected submission of platform with its reason codes.
func (r *rejections) add(platform string, reasons ...string) {
	k := rejectionKey{platform, r.env.Now().UTC().Truncate(r.window)}
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.open[k]
	if ev == nil {
		// The random id names this window's event; a retried publish
		// carries the same id and stores nothing new.
		ev = &event.Event{Type: event.Rejected, Notice: uuid.NewString(), Time: k.start, Actor: Name,
			Platform: platform, ReasonCounts: map[string]int{}}
		r.open[k] = ev
	}
	ev.Count++
	for _, code := range reasons {
		ev.ReasonCounts[code]++
	}
}

// run records every window once it has ended, and all of them when ctx
// ends.
func (r *rejections) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(max(r.window/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.record(ctx, false)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			r.record(fctx, true)
			cancel()
			return
		}
	}
}

// record publishes the events of the windows that have ended (all: every
// window). One that fails stays and is tried again at the next tick.
func (r *rejections) record(ctx context.Context, all bool) {
	now := r.env.Now().UTC()
	r.mu.Lock()
	var keys []rejectionKey
	var msgs []stream.Message
	for k, ev := range r.open {
		if !all && k.start.Add(r.window).After(now) {
			continue
		}
		ev.Reasons = slices.Sorted(maps.Keys(ev.ReasonCounts))
		m, err := ev.Message()
		if err != nil {
			r.env.Log.Error("intake: encoding a rejected event", zap.Error(err))
			delete(r.open, k)
			continue
		}
		keys = append(keys, k)
		msgs = append(msgs, m)
	}
	r.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	errs := r.env.Publisher.PublishAll(ctx, msgs)
	r.mu.Lock()
	defer r.mu.Unlock()
	failed := 0
	for i, err := range errs {
		if !stream.Failed(err) {
			delete(r.open, keys[i])
			continue
		}
		failed++
	}
	if failed > 0 {
		r.env.Log.Warn("intake: recording rejected submissions failed; retrying", zap.Int("events", failed),
			zap.Error(stream.FirstError(errs)))
	}
}
