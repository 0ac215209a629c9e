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
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = "receipts"

const consumerName = "receipts"

// Service is the receipts service.
type Service struct {
	env        *module.Env
	deliveries jetstream.Stream
	recorded   *prometheus.CounterVec
	wg         sync.WaitGroup
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
	var err error
	if s.deliveries, err = s.env.Stream(ctx, stream.Deliveries); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	cons, err := s.env.JS.CreateOrUpdateConsumer(ctx, stream.Receipts, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "records acks on NATS as receipts",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       10 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 4096,
	})
	if err != nil {
		return fmt.Errorf("receipts: creating consumer: %w", err)
	}
	loop := &stream.Consumer{Name: consumerName, Consumer: cons, Max: 128, Log: s.env.Log, Handle: s.handle,
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

func (s *Service) handle(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	var out []stream.Message
	var owner []int
	for i, m := range msgs {
		evs, err := s.receipt(ctx, m.Data())
		if err != nil {
			errs[i] = err
			continue
		}
		for _, e := range evs {
			em, err := e.Message()
			if err != nil {
				errs[i] = fault.E("receipts", fault.Poison, err)
				break
			}
			out = append(out, em)
			owner = append(owner, i)
		}
	}
	for j, err := range stream.PublishAll(ctx, s.env.JS, out) {
		if err != nil && !fault.Is(err, fault.Exists) && errs[owner[j]] == nil {
			errs[owner[j]] = err
		}
	}
	return errs
}

// receipt returns the events one ack advisory stands for: the delivered
// event (a no-op when the hand-out was recorded) and the acknowledged one.
func (s *Service) receipt(ctx context.Context, data []byte) ([]event.Event, error) {
	var a ackAdvisory
	if err := json.Unmarshal(data, &a); err != nil || a.StreamSeq == 0 {
		return nil, fault.Errorf("receipts", fault.Poison, "unreadable ack advisory: %v", err)
	}
	m, err := s.deliveries.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		if fault.Is(stream.Classify("receipts", err), fault.NotFound) {
			// Past retention: nothing left to name the receipt by.
			s.env.Log.Warn("receipts: acked delivery no longer stored", zap.Uint64("seq", a.StreamSeq))
			return nil, nil
		}
		return nil, stream.Classify("receipts", err)
	}
	d, err := delivery.Decode(m.Data)
	if err != nil {
		return nil, fault.E("receipts", fault.Poison, err)
	}
	// nr.delivery.<authority>.<priority>.<id>
	parts := strings.Split(m.Subject, ".")
	if len(parts) < 5 {
		return nil, fault.Errorf("receipts", fault.Poison, "unexpected delivery subject %s", m.Subject)
	}
	authority := parts[2]
	at := a.Time
	if at.IsZero() {
		at = s.env.Now()
	}
	delivered := d.Event(s.env.Pseudonyms, event.Delivered, authority, Name, at)
	acked := d.Event(s.env.Pseudonyms, event.Acknowledged, authority, Name, at)
	s.recorded.WithLabelValues(authority).Inc()
	return []event.Event{delivered, acked}, nil
}
