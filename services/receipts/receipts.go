// Package receipts records the receipts of authorities that consume their
// queue from NATS directly. Their consumers sample every ack; the server's
// ack advisories are captured in the NR_RECEIPTS work queue, and this
// service turns each into the delivered (if not yet recorded) and
// acknowledged lifecycle events, exactly as an ack through the HTTP inbox
// would. Advisories are stored before they are processed, so a receipt
// survives any crash of the relay.
package receipts

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = "receipts"

// Service is the receipts service.
type Service struct {
	env *module.Env
	// stored reads a delivery by its sequence in the delivery stream.
	stored   func(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error)
	recorded *prometheus.CounterVec
	wg       sync.WaitGroup
}

// New returns the receipts service.
func New(env *module.Env) *Service {
	s := &Service{env: env, recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "noticerelay_receipts_nats_acks_total",
		Help: "Acks on NATS recorded as receipts, by authority.",
	}, []string{"authority"})}
	env.Metrics.MustRegister(s.recorded)
	return s
}

// Start creates the consumer of the advisories and starts it.
func (s *Service) Start(ctx context.Context) error {
	deliveries, err := s.env.Stream(ctx, stream.Deliveries)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	s.stored = func(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
		return deliveries.GetMsg(ctx, seq)
	}
	loop := &stream.Consumer{Name: stream.ReceiptsConsumer, Stream: stream.Receipts, Max: 128,
		Config: stream.Durable(stream.ReceiptsConsumer, "records acks on NATS as receipts"),
		Stage:  s.stage, Store: s.env.Publisher, Log: s.env.Log,
		JS: s.env.JS, PoisonAttempts: s.env.Config.Deliveries.PoisonAttempts}
	return loop.Start(ctx, &s.wg)
}

// Wait blocks until the consumer has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// ackAdvisory is the part of JetStream's consumer ack metric the relay reads.
type ackAdvisory struct {
	Stream    string    `json:"stream"`
	Consumer  string    `json:"consumer"`
	StreamSeq uint64    `json:"stream_seq"`
	Time      time.Time `json:"timestamp"`
}

// stage returns the events one ack advisory stands for: the delivered
// event (a no-op when the hand-out was recorded) and the acknowledged one.
func (s *Service) stage(ctx context.Context, in stream.Input) ([]stream.Message, error) {
	var a ackAdvisory
	if err := json.Unmarshal(in.Data, &a); err != nil || a.StreamSeq == 0 {
		return nil, fault.Errorf("receipts", fault.Poison, "unreadable ack advisory: %v", err)
	}
	m, err := s.stored(ctx, a.StreamSeq)
	if err != nil {
		if err := stream.Classify("receipts", err); !fault.Is(err, fault.NotFound) {
			return nil, err
		}
		// Past retention: nothing left to name the receipt by.
		s.env.Log.Warn("receipts: acked delivery no longer stored", zap.Uint64("seq", a.StreamSeq))
		return nil, nil
	}
	d, err := delivery.Decode(m.Data)
	if err != nil {
		return nil, fault.E("receipts", fault.Poison, err)
	}
	authority, _, _, ok := stream.ParseDeliverySubject(m.Subject)
	if !ok {
		return nil, fault.Errorf("receipts", fault.Poison, "unexpected delivery subject %s", m.Subject)
	}
	at := a.Time
	if at.IsZero() {
		at = s.env.Now()
	}
	out, err := d.Receipt(s.env.Pseudonyms, authority, Name, at)
	if err != nil {
		return nil, fault.E("receipts", fault.Poison, err)
	}
	s.recorded.WithLabelValues(authority).Inc()
	return out, nil
}
