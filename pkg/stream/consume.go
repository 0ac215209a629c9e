package stream

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/fault"
)

// BatchHandler processes messages and returns one error per message: nil
// (or fault.Exists) when everything the message caused is stored, a
// fault.Poison error when it can never be processed, any other error to
// have it delivered again later.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) []error

// Consumer is the one consume loop every stage shares: it gathers up to Max
// messages that are already waiting, hands them to the handler as one
// batch, then acknowledges each message only after the handler says that
// what it caused is stored.
type Consumer struct {
	Name     string
	Consumer jetstream.Consumer
	Max      int
	Log      *zap.Logger
	Handle   BatchHandler
}

// Run consumes until ctx is cancelled, then drains: it stops pulling,
// processes the messages already buffered (so none waits out its ack wait
// after a graceful restart) and returns. ready is closed once pulling.
func (c *Consumer) Run(ctx context.Context, ready chan<- struct{}) error {
	max := c.Max
	if max <= 0 {
		max = 128
	}
	it, err := c.Consumer.Messages(jetstream.PullMaxMessages(2 * max))
	if err != nil {
		return fault.E("consume "+c.Name, fault.Unavailable, err)
	}
	close(ready)
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	batch := make([]jetstream.Msg, 0, max)
	for {
		first, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			c.Log.Warn("consume: next", zap.String("consumer", c.Name), zap.Error(err))
			continue
		}
		batch = append(batch[:0], first)
		for len(batch) < max {
			m, err := it.Next(jetstream.NextMaxWait(time.Millisecond))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		c.settle(batch, c.Handle(context.WithoutCancel(ctx), batch))
	}
}

// settle acknowledges, naks or terminates each message by its error.
func (c *Consumer) settle(batch []jetstream.Msg, errs []error) {
	for i, m := range batch {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		switch {
		case err == nil || fault.Is(err, fault.Exists):
			if aerr := m.Ack(); aerr != nil {
				c.Log.Warn("consume: ack", zap.String("consumer", c.Name), zap.Error(aerr))
			}
		case fault.Is(err, fault.Poison):
			c.Log.Error("consume: poison message terminated", zap.String("consumer", c.Name),
				zap.String("subject", m.Subject()), zap.Error(err))
			_ = m.TermWithReason(err.Error())
		default:
			n := uint64(1)
			if md, merr := m.Metadata(); merr == nil {
				n = md.NumDelivered
			}
			c.Log.Warn("consume: will retry", zap.String("consumer", c.Name),
				zap.String("subject", m.Subject()), zap.Uint64("delivered", n), zap.Error(err))
			_ = m.NakWithDelay(Backoff(n))
		}
	}
}

// Backoff is the delay before the n-th redelivery: 100 ms doubling up to 30 s.
func Backoff(n uint64) time.Duration {
	d := 100 * time.Millisecond
	for i := uint64(1); i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}
