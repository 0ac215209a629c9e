package stream

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/health"
)

// Input is one stored message as a stage reads it.
type Input struct {
	Subject string
	Data    []byte
}

// Stage is one step of the pipeline: from a stored message to the messages
// it causes, which the consume loop stores (Watermill's handler). It
// returns a fault.Poison error for a message that can never be processed,
// a *Later to look at it again after a while, any other error to have it
// delivered again. It must be safe for concurrent use and must not rely
// on message order; it stores nothing itself.
type Stage func(ctx context.Context, in Input) ([]Message, error)

// BatchHandler processes messages and returns one error per message: nil
// (or fault.Exists) when everything the message caused is stored, a
// fault.Poison error when it can never be processed, any other error to
// have it delivered again later. For a stage whose writes are not plain
// publishes (the status projection's conditional writes).
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) []error

// Consumer is the one consume loop every stage shares: it gathers up to Max
// messages that are already waiting, hands them to the stage, stores what
// the stage made of the whole batch in one round through Store, then
// settles each message by the outcome of its own outputs: acknowledged only
// once everything it caused is stored.
type Consumer struct {
	// Name is the durable consumer's name; Start creates or updates it on
	// Stream with Config (see Durable).
	Name   string
	Stream string
	Config jetstream.ConsumerConfig
	Max    int
	Log    *zap.Logger
	// Stage makes each message's outputs, stored through Store; or Handle
	// processes each batch by itself.
	Stage  Stage
	Store  Publisher
	Handle BatchHandler
	// JS bounds poison messages: one is tried PoisonAttempts times
	// (default 5), then copied to the dead-letter stream with its reason
	// and terminated (see Poisoned).
	JS             jetstream.JetStream
	PoisonAttempts int
	// Workers is how many batches are handled at once (default 1).
	Workers int

	// unavailable logs a streak of batches the store could not take once,
	// not once per message (contract section 10); pulls, a streak of
	// failed pulls (NATS down).
	unavailable, pulls health.Streak
}

// Durable is the configuration of one of the relay's durable consumers:
// every message from the start of the stream, explicit acks, redelivered
// without limit. Callers adjust what differs.
func Durable(name, doc string, filters ...string) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{Durable: name, Description: doc, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 10 * time.Second, MaxDeliver: -1, MaxAckPending: 4096, DeliverPolicy: jetstream.DeliverAllPolicy}
	if len(filters) == 1 {
		c.FilterSubject = filters[0]
	} else {
		c.FilterSubjects = filters
	}
	return c
}

// Start runs the consumer in the background, counted in wg, and returns
// once it is pulling, or with the error that kept it from starting.
func (c *Consumer) Start(ctx context.Context, wg *sync.WaitGroup) error {
	ready := make(chan struct{})
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- c.Run(ctx, ready)
	}()
	select {
	case <-ready:
		return nil
	case err := <-errc:
		return err
	}
}

// Run consumes until ctx is cancelled, then drains: it stops pulling,
// processes the messages already buffered (so none waits out its ack wait
// after a graceful restart) and returns. ready is closed once pulling.
// With Workers > 1, that many batches are in hand at once, so that one
// batch's processing overlaps another's wait for storage; handlers must
// then be safe for concurrent use and must not rely on message order.
func (c *Consumer) Run(ctx context.Context, ready chan<- struct{}) error {
	cfg := c.Config
	cfg.Durable = c.Name
	source, err := c.JS.CreateOrUpdateConsumer(ctx, c.Stream, cfg)
	if err != nil {
		return fault.E("consume "+c.Name+": creating the consumer", fault.Unavailable, err)
	}
	size := c.Max
	if size <= 0 {
		size = 128
	}
	c.unavailable.Log, c.unavailable.What = c.Log, "consume "+c.Name+": storing what messages caused"
	workers := max(c.Workers, 1)
	c.pulls.Log, c.pulls.What = c.Log, "consume "+c.Name+": pulling"
	// Messages pass from nats.go's callback to the reader through in. The
	// callback's subscription buffers up to 64 MiB behind a busy reader,
	// and each pull request is capped at pullMaxBytes, so that even two
	// requests answered at once (the server may still serve one from
	// before a reconnection) fit: none is dropped for a slow consumer.
	in := make(chan jetstream.Msg, size)
	cc, err := source.Consume(func(m jetstream.Msg) { in <- m },
		jetstream.PullMaxMessagesWithBytesLimit(2*size*workers, pullMaxBytes),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { c.pulls.Fail(err) }))
	if err != nil {
		return fault.E("consume "+c.Name, fault.Unavailable, err)
	}
	closed := cc.Closed()
	close(ready)
	stop := context.AfterFunc(ctx, cc.Drain)
	defer stop()
	// One reader gathers batches, workers handle them.
	jobs := make(chan []jetstream.Msg)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range jobs {
				c.settle(context.WithoutCancel(ctx), batch, c.handle(context.WithoutCancel(ctx), batch))
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)
	gap := time.NewTimer(time.Hour)
	defer gap.Stop()
	for {
		var first jetstream.Msg
		drained := false
		select {
		case first = <-in:
		case <-closed:
			// Drained: every callback has returned; what they passed on
			// is handled before returning.
			drained = true
			select {
			case first = <-in:
			default:
				return nil
			}
		}
		c.pulls.OK()
		batch := make([]jetstream.Msg, 0, size)
		for m := first; m != nil; {
			if m.Headers().Get(MarkerHeader) != "" {
				Ack(c.Log, c.Name, m) // a delete marker: nothing to process
			} else {
				batch = append(batch, m)
			}
			m = nil
			if len(batch) < size {
				m = next(in, gap, drained)
			}
		}
		if len(batch) > 0 {
			jobs <- batch
		}
	}
}

// handle processes one batch: by Handle, or by Stage with every output
// stored in one round (the outputs marked Last in a second one), each
// message failing with the first of its outputs that failed.
func (c *Consumer) handle(ctx context.Context, batch []jetstream.Msg) []error {
	if c.Handle != nil {
		return c.Handle(ctx, batch)
	}
	errs := make([]error, len(batch))
	outs := make([][]Message, len(batch))
	for i, m := range batch {
		outs[i], errs[i] = c.Stage(ctx, Input{Subject: m.Subject(), Data: m.Data()})
	}
	for _, last := range []bool{false, true} {
		var all []Message
		var owner []int
		for i, out := range outs {
			for _, o := range out {
				if errs[i] == nil && o.Last == last {
					all, owner = append(all, o), append(owner, i)
				}
			}
		}
		if len(all) == 0 {
			continue
		}
		for j, err := range c.Store.PublishAll(ctx, all) {
			if errs[owner[j]] == nil && Failed(err) {
				errs[owner[j]] = err
			}
		}
	}
	return errs
}

// pullMaxBytes caps one pull request: above NATS's largest message (8 MiB
// as the relay recommends max_payload), and twice it well below the 64 MiB
// a subscription buffers.
const pullMaxBytes = 16 << 20

// A pull request waits at the consumer's leader. One sent while the
// consumer has no leader (a new one being elected after a crash, a
// partition or a quorum regained), or waiting at a leader that is then
// lost, gets no answer, and nats.go asks again only once it has missed two
// of the consumer's idle heartbeats: with its defaults (30 s expiry, 15 s
// heartbeat) a stage stalled up to 30 s after a leader change, too long for
// an urgent notice. With these, a lost pull is noticed within two seconds;
// the cost is one pull request per consumer every pullExpiry and one
// heartbeat per consumer every pullHeartbeat while idle. nats.go requires
// the heartbeat within 500 ms..30 s and at most half the expiry. Each
// missed-heartbeat pull may stay at the server until it expires: fewer than
// three at once, which the 64 MiB buffer holds (see pullMaxBytes).
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// next takes the message waiting in in, waiting for one at most a
// millisecond unless drained (then nothing more comes), or nil.
func next(in <-chan jetstream.Msg, gap *time.Timer, drained bool) jetstream.Msg {
	select {
	case m := <-in:
		return m
	default:
	}
	if drained {
		return nil
	}
	gap.Reset(time.Millisecond)
	defer gap.Stop()
	select {
	case m := <-in:
		return m
	case <-gap.C:
		return nil
	}
}

// settle acknowledges, naks or terminates each message by its error.
func (c *Consumer) settle(ctx context.Context, batch []jetstream.Msg, errs []error) {
	var unavailable error
	defer func() {
		if unavailable != nil {
			c.unavailable.Fail(unavailable)
		} else {
			c.unavailable.OK()
		}
	}()
	for i, m := range batch {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		if fault.Is(err, fault.TooLarge) {
			// Larger than NATS carries: it never will be, so it is poison.
			err = fault.E("consume", fault.Poison, err)
		}
		switch {
		case !Failed(err):
			Ack(c.Log, c.Name, m)
		case fault.Is(err, fault.Poison):
			Poisoned(ctx, c.JS, c.Log, m, c.Name, c.PoisonAttempts, err)
		default:
			if d, ok := IsLater(err); ok {
				_ = m.NakWithDelay(d)
				continue
			}
			n := uint64(1)
			if md, merr := m.Metadata(); merr == nil {
				n = md.NumDelivered
			}
			if fault.Is(err, fault.Unavailable) || fault.Is(err, fault.Full) {
				unavailable = err
				_ = m.NakWithDelay(Backoff(n))
				continue
			}
			c.Log.Warn("consume: will retry", zap.String("consumer", c.Name),
				zap.String("subject", m.Subject()), zap.Uint64("delivered", n), zap.Error(err))
			_ = m.NakWithDelay(Backoff(n))
		}
	}
}

// Ack acknowledges m, logging a failure: the message then comes again,
// and whoever takes it finds its work done (every write has its id).
func Ack(log *zap.Logger, consumer string, m jetstream.Msg) {
	if err := m.Ack(); err != nil {
		log.Warn("consume: ack", zap.String("consumer", consumer), zap.String("subject", m.Subject()), zap.Error(err))
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
