package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
	"github.com/noticerelay/noticerelay/services/status"
)

// row is one notice in a platform's list.
type row struct {
	ID, Reference, ReceivedAt, Status, Priority string
	Recipients                                  int
	// Unread counts the authorities' messages no one of the platform has
	// seen.
	Unread int
	// pseudonym names the notice in events.
	pseudonym string
}

// index is every platform's notices, newest first, followed from the
// status projection (KV NR_STATUS): the relay keeps no list per platform,
// so the portal builds one in memory at start and keeps it up to date.
type index struct {
	mu         sync.RWMutex
	byPlatform map[string]map[string]row
	// ready is closed once the bucket's values at start are all read.
	ready chan struct{}
	// u is what the platforms have read of the authorities' messages.
	u         unread
	reads     jetstream.KeyValue
	env       *module.Env
	retention time.Duration
	// followers keep the above up to date.
	followers []interface{ interrupt() }
}

func (ix *index) now() time.Time { return ix.env.Now() }

func startIndex(ctx context.Context, env *module.Env, wg *sync.WaitGroup) (*index, error) {
	ix := &index{byPlatform: map[string]map[string]row{}, ready: make(chan struct{}), env: env,
		retention: time.Duration(env.Config.Retention.Notices),
		u:         unread{sent: map[string]map[string]time.Time{}, read: map[string]map[string]bool{}}}
	var err error
	if ix.reads, err = env.JS.KeyValue(ctx, stream.ReadBucket); err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	if err := ix.followReads(ctx, ix.reads, env, wg); err != nil {
		return nil, err
	}
	if err := ix.followMessages(ctx, env, wg); err != nil {
		return nil, err
	}
	kv, err := env.JS.KeyValue(ctx, stream.StatusBucket)
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	f := followBucket(kv, env.Log, "following "+stream.StatusBucket, func() { close(ix.ready) }, func(e jetstream.KeyValueEntry) {
		var p status.Projection
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			env.Log.Warn("portal: a status projection could not be read", zap.Error(err))
			return
		}
		ix.put(&p)
	}, jetstream.IgnoreDeletes())
	ix.followers = append(ix.followers, f)
	if err := f.start(ctx, wg); err != nil {
		return nil, err
	}
	return ix, nil
}

// put records a notice's state.
func (ix *index) put(p *status.Projection) {
	if p.ID == "" || p.Platform == "" {
		return // not folded from the body yet
	}
	v := p.View()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	m := ix.byPlatform[p.Platform]
	if m == nil {
		m = map[string]row{}
		ix.byPlatform[p.Platform] = m
	}
	ps := m[p.ID].pseudonym
	if ps == "" {
		ps = ix.env.Pseudonyms.Notice(p.ID)
	}
	m[p.ID] = row{ID: p.ID, Reference: p.Reference, ReceivedAt: p.ReceivedAt, Status: v.Status, Priority: p.Priority,
		Recipients: len(p.Recipients), pseudonym: ps}
}

// list returns a platform's notices, newest first.
func (ix *index) list(platform string) []row {
	ix.mu.RLock()
	out := make([]row, 0, len(ix.byPlatform[platform]))
	for _, r := range ix.byPlatform[platform] {
		out = append(out, r)
	}
	ix.mu.RUnlock()
	for i := range out {
		out[i].Unread = ix.unread(platform, out[i].ID, out[i].pseudonym)
	}
	slices.SortFunc(out, func(a, b row) int {
		if c := strings.Compare(b.ReceivedAt, a.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Reference, b.Reference)
	})
	return out
}
