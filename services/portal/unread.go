package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/message"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// A message from an authority is unread until a person of the platform
// has opened the notice's page once it was there. What was seen is kept
// per platform and notice in the KV bucket NR_PORTAL_READ (key
// "<platform>.<notice id>", the ids of the messages seen), so that it
// survives a restart and every relay process agrees; each process follows
// the bucket and the message_sent events of messages to platforms in
// memory, to count a list's unread messages without reading every thread.

// marks is the value of a read key.
type marks struct {
	Read []string `json:"read"`
}

func readKey(platform, id string) string { return platform + "." + id }

// unread is what the index knows of messages to platforms.
type unread struct {
	mu sync.RWMutex
	// sent holds, per notice pseudonym, the messages the authorities sent
	// to its platform and when.
	sent map[string]map[string]time.Time
	// read holds the ids seen, per read key.
	read map[string]map[string]bool
}

// followMessages follows the message_sent events of messages to
// platforms.
func (ix *index) followMessages(ctx context.Context, env *module.Env, wg *sync.WaitGroup) error {
	filter := stream.EventSubject("*", string(event.MessageSent), message.Platform, event.KindMessage, "*")
	f := followStream(env.JS, env.Log, "following the messages to platforms", stream.Events, filter, func(m jetstream.Msg) {
		ev, err := event.Decode(m.Data())
		if err != nil || ev.Sender == message.Platform {
			return
		}
		ix.u.mu.Lock()
		defer ix.u.mu.Unlock()
		s := ix.u.sent[ev.Notice]
		if s == nil {
			s = map[string]time.Time{}
			ix.u.sent[ev.Notice] = s
		}
		s[ev.MessageID] = ev.Time
	})
	ix.followers = append(ix.followers, f)
	return f.start(ctx, wg)
}

// followReads follows the read marks of every platform.
func (ix *index) followReads(ctx context.Context, kv jetstream.KeyValue, env *module.Env, wg *sync.WaitGroup) error {
	f := followBucket(kv, env.Log, "following "+stream.ReadBucket, nil, func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			ix.setRead(e.Key(), nil)
			return
		}
		var mk marks
		if err := json.Unmarshal(e.Value(), &mk); err != nil {
			env.Log.Warn("portal: a read mark could not be read", zap.Error(err))
			return
		}
		ix.setRead(e.Key(), mk.Read)
	})
	ix.followers = append(ix.followers, f)
	return f.start(ctx, wg)
}

// setRead records the ids seen under a read key (nil: none).
func (ix *index) setRead(key string, ids []string) {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	ix.u.mu.Lock()
	defer ix.u.mu.Unlock()
	if len(ids) == 0 {
		delete(ix.u.read, key)
		return
	}
	ix.u.read[key] = set
}

// unread counts the messages of authorities to platform about notice id
// (its pseudonym ps) that no person of the platform has seen; messages
// older than the retention are gone, and so are their read marks.
func (ix *index) unread(platform, id, ps string) int {
	ix.u.mu.RLock()
	defer ix.u.mu.RUnlock()
	read := ix.u.read[readKey(platform, id)]
	n := 0
	for mid, at := range ix.u.sent[ps] {
		if !read[mid] && ix.now().Sub(at) < ix.retention {
			n++
		}
	}
	return n
}

// readMarks returns the ids of messages platform has seen of notice id,
// from the bucket itself (what this process follows may lag a moment).
func readMarks(ctx context.Context, kv jetstream.KeyValue, platform, id string) (map[string]bool, uint64, error) {
	e, err := kv.Get(ctx, readKey(platform, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return map[string]bool{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("portal: reading the read marks: %w", err)
	}
	var mk marks
	if err := json.Unmarshal(e.Value(), &mk); err != nil {
		return nil, 0, fmt.Errorf("portal: reading the read marks: %w", err)
	}
	out := map[string]bool{}
	for _, m := range mk.Read {
		out[m] = true
	}
	return out, e.Revision(), nil
}

// markRead adds ids to what platform has seen of notice id, keeping what
// another process added meanwhile (compare and set on the revision).
func (ix *index) markRead(ctx context.Context, kv jetstream.KeyValue, platform, id string, ids []string) error {
	key := readKey(platform, id)
	for range 5 {
		seen, rev, err := readMarks(ctx, kv, platform, id)
		if err != nil {
			return err
		}
		all := make([]string, 0, len(seen)+len(ids))
		for m := range seen {
			all = append(all, m)
		}
		for _, m := range ids {
			if !seen[m] {
				all = append(all, m)
			}
		}
		if len(all) == len(seen) {
			return nil
		}
		slices.Sort(all)
		data, err := json.Marshal(marks{Read: all})
		if err != nil {
			return fmt.Errorf("portal: encoding the read marks: %w", err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, data)
		} else {
			_, err = kv.Update(ctx, key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another process wrote first: read again
		}
		if err != nil {
			return fmt.Errorf("portal: writing the read marks: %w", err)
		}
		ix.setRead(key, all)
		return nil
	}
	return fmt.Errorf("portal: the read marks of %s kept changing", key)
}
