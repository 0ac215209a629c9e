package portal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// The portal's lists are built from what it follows in memory: the events
// of messages to platforms (an ordered consumer) and two KV buckets (key
// watchers). The client library recreates an ordered consumer or a watcher
// it loses (a deleted consumer, a server restart), but when a subscription
// ends all the same, the portal must not go on with counts frozen until a
// restart: a follower opens a new subscription where the last one stopped,
// after a pause that doubles up to followMaxPause, until the service stops.

// Pauses between two subscriptions of a follower.
const (
	followMinPause = 100 * time.Millisecond
	followMaxPause = 5 * time.Second
)

// errWatchEnded says that a key watcher's updates ended.
var errWatchEnded = errors.New("the watcher's updates ended")

// subscription is what a follower reads: next returns the next item, or
// an error once the subscription has ended; stop ends it.
type subscription[T any] interface {
	next() (T, error)
	stop()
}

// follower keeps one subscription open until its context ends.
type follower[T any] struct {
	what string
	log  *zap.Logger
	// open subscribes again, from where the last subscription stopped.
	open func(ctx context.Context) (subscription[T], error)
	put  func(T)

	mu  sync.Mutex
	cur subscription[T]
	// resumed counts the subscriptions opened after the first.
	resumed int
}

// start opens the first subscription (an error here fails the service's
// start) and follows it, and the next ones, in a goroutine of wg.
func (f *follower[T]) start(ctx context.Context, wg *sync.WaitGroup) error {
	s, err := f.open(ctx)
	if err != nil {
		return fmt.Errorf("portal: %s: %w", f.what, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pause := followMinPause
		for {
			f.set(s)
			got, err := f.read(ctx, s)
			if ctx.Err() != nil {
				return
			}
			if got {
				pause = followMinPause
			}
			f.log.Warn("portal: "+f.what+" stopped; following again", zap.Error(err), zap.Duration("in", pause))
			for {
				if !sleep(ctx, pause) {
					return
				}
				pause = min(2*pause, followMaxPause)
				if s, err = f.open(ctx); err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				f.log.Warn("portal: "+f.what+" could not start again", zap.Error(err), zap.Duration("in", pause))
			}
			f.mu.Lock()
			f.resumed++
			f.mu.Unlock()
		}
	}()
	return nil
}

// read hands the items of s to put until s ends (stopped when ctx ends);
// got says whether any item came.
func (f *follower[T]) read(ctx context.Context, s subscription[T]) (got bool, err error) {
	defer context.AfterFunc(ctx, s.stop)()
	defer s.stop()
	for {
		v, err := s.next()
		if err != nil {
			return got, err
		}
		got = true
		f.put(v)
	}
}

func (f *follower[T]) set(s subscription[T]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = s
}

// interrupt ends the current subscription as a failure would (for tests).
func (f *follower[T]) interrupt() {
	f.mu.Lock()
	s := f.cur
	f.mu.Unlock()
	if s != nil {
		s.stop()
	}
}

// sleep waits d, or returns false once ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// orderedSub reads an ordered consumer.
type orderedSub struct {
	it jetstream.MessagesContext
}

func (s orderedSub) next() (jetstream.Msg, error) { return s.it.Next() }
func (s orderedSub) stop()                        { s.it.Stop() }

// followStream returns a follower of the messages of name that match
// filter, from the first: each subscription starts after the last message
// handed to put.
func followStream(js jetstream.JetStream, log *zap.Logger, what, name, filter string, put func(jetstream.Msg)) *follower[jetstream.Msg] {
	var last uint64 // the stream sequence of the last message handed over
	return &follower[jetstream.Msg]{what: what, log: log,
		open: func(ctx context.Context) (subscription[jetstream.Msg], error) {
			cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
			if last > 0 {
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
			}
			cons, err := js.OrderedConsumer(ctx, name, cfg)
			if err != nil {
				return nil, err
			}
			it, err := cons.Messages()
			if err != nil {
				return nil, err
			}
			return orderedSub{it: it}, nil
		},
		put: func(m jetstream.Msg) {
			if md, err := m.Metadata(); err == nil {
				last = md.Sequence.Stream
			}
			put(m)
		}}
}

// watchSub reads a key watcher.
type watchSub struct {
	w jetstream.KeyWatcher
}

func (s watchSub) next() (jetstream.KeyValueEntry, error) {
	e, ok := <-s.w.Updates()
	if !ok {
		return nil, errWatchEnded
	}
	return e, nil
}

func (s watchSub) stop() { _ = s.w.Stop() }

// followBucket returns a follower of every key of kv: each watcher starts
// with the current value of each key. caughtUp, when not nil, is called
// once the values stored when the first watcher started have all been
// handed to put.
func followBucket(kv jetstream.KeyValue, log *zap.Logger, what string, caughtUp func(), put func(jetstream.KeyValueEntry), opts ...jetstream.WatchOpt) *follower[jetstream.KeyValueEntry] {
	return &follower[jetstream.KeyValueEntry]{what: what, log: log,
		open: func(ctx context.Context) (subscription[jetstream.KeyValueEntry], error) {
			w, err := kv.WatchAll(ctx, opts...)
			if err != nil {
				return nil, err
			}
			return watchSub{w: w}, nil
		},
		put: func(e jetstream.KeyValueEntry) {
			switch {
			case e == nil && caughtUp != nil:
				caughtUp()
				caughtUp = nil
			case e != nil:
				put(e)
			}
		}}
}
