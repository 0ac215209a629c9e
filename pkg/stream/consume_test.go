package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// TestConsumerDropsNothingWhileBusy: messages arrive while the handler is
// busy, large ones (notices reach 1 MiB), or after a reconnection, when the
// server answers the loop's pull request from before as well as the new
// one. nats.go must drop none for a slow consumer: a dropped message waits
// out its ack wait, which for an urgent notice is a minute lost.
func TestConsumerDropsNothingWhileBusy(t *testing.T) {
	t.Run("large messages", func(t *testing.T) { consumeWhileBusy(t, 20, 4<<20, false) })
	t.Run("after a reconnection", func(t *testing.T) { consumeWhileBusy(t, 200, 1<<10, true) })
}

func consumeWhileBusy(t *testing.T, large, size int, reconnect bool) {
	srv, err := embedded.Start(embedded.Options{DataDir: t.TempDir(), DefaultSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	var slow atomic.Int32
	js := relaytest.JetStream(t)(srv.Connect("test", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			slow.Add(1)
		}
	})))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BIG", Subjects: []string{"big.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "BIG", jetstream.ConsumerConfig{Durable: "busy",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	// One small message first: its batch keeps the only worker busy while
	// the large ones arrive; the next batch (up to Max) waits in the
	// loop's hand, the rest in the subscription.
	busy, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	handled := map[string]bool{}
	loop := &stream.Consumer{Name: "busy", Stream: "BIG", Config: jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute}, JS: js, Max: 32, Log: zaptest.NewLogger(t),
		Handle: func(_ context.Context, msgs []jetstream.Msg) []error {
			once.Do(func() { close(busy); <-release })
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				handled[m.Subject()] = true
			}
			return make([]error, len(msgs))
		}}
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if err := loop.Start(runCtx, &wg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	if reconnect {
		// A reconnection (a failover, a blip) while the loop's pull request
		// waits: nats.go asks again, and the server still holds the
		// first request too.
		relaytest.Eventually(t, 10*time.Second, "the loop's pull request", func() bool {
			ci, err := cons.Info(ctx)
			return err == nil && ci.NumWaiting > 0
		})
		if err := js.Conn().ForceReconnect(); err != nil {
			t.Fatal(err)
		}
		relaytest.Eventually(t, 10*time.Second, "a second pull request", func() bool {
			ci, err := cons.Info(ctx)
			return err == nil && ci.NumWaiting > 1
		})
	}
	if _, err := js.Publish(ctx, "big.first", []byte("small")); err != nil {
		t.Fatal(err)
	}
	<-busy
	body := bytes.Repeat([]byte("x"), size)
	for i := range large {
		if _, err := js.Publish(ctx, fmt.Sprintf("big.%d", i), body); err != nil {
			t.Fatal(err)
		}
	}
	// Let the server send all it will while the handler is busy: until
	// nothing is left to send, or no pull request of the loop is open.
	relaytest.Eventually(t, 30*time.Second, "the server to stop sending", func() bool {
		ci, err := cons.Info(ctx)
		return slow.Load() > 0 || (err == nil && (ci.NumPending == 0 || ci.NumWaiting == 0))
	})
	close(release)
	relaytest.Eventually(t, 10*time.Second, "every message handled well within its ack wait", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == large+1
	})
	if n := slow.Load(); n > 0 {
		t.Errorf("nats.go reported a slow consumer %d times: messages were dropped", n)
	}
}
