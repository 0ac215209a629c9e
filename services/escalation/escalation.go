// Package escalation makes sure no urgent delivery waits unnoticed: an
// urgent notice delivery not acknowledged within
// deliveries.urgent_deadline raises an `escalated` event (shown in the
// status as the recipient's escalated_at) and, if the authority names an
// escalation target, puts a copy of the notice into the target's queue.
//
// The timer is the queued event itself: a durable consumer reads each
// queued event and, while the deadline is ahead, asks JetStream to
// redeliver it at the deadline (a Nak with delay). The deadline is
// computed from the event's time, never from the timer, so a restart, a
// redelivery or a second process only re-checks it: the timer survives
// restarts and fires at most one escalation per delivery (its event
// subject is unique).
package escalation

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
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = "escalation"

const consumerName = "escalation"

// Service is the escalation service.
type Service struct {
	env        *module.Env
	deadline   time.Duration
	sealer     *delivery.Sealer
	events     jetstream.Stream
	notices    jetstream.Stream
	deliveries jetstream.Stream
	escalated  *prometheus.CounterVec
	wg         sync.WaitGroup
}

// New returns the escalation service.
func New(env *module.Env) *Service {
	s := &Service{env: env, deadline: time.Duration(env.Config.Deliveries.UrgentDeadline),
		escalated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_escalations_total",
			Help: "Urgent deliveries left unacknowledged past their deadline, by authority.",
		}, []string{"authority"})}
	env.Metrics.MustRegister(s.escalated)
	return s
}

// Start creates the durable consumer of queued events and starts it.
func (s *Service) Start(ctx context.Context) error {
	var err error
	if s.sealer, err = delivery.NewSealer(s.env.Config); err != nil {
		return fmt.Errorf("escalation: %w", err)
	}
	for name, dst := range map[string]*jetstream.Stream{stream.Events: &s.events, stream.Notices: &s.notices, stream.Deliveries: &s.deliveries} {
		if *dst, err = s.env.Stream(ctx, name); err != nil {
			return fmt.Errorf("escalation: %w", err)
		}
	}
	cons, err := s.env.JS.CreateOrUpdateConsumer(ctx, stream.Events, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "escalates urgent notice deliveries left unacknowledged past their deadline",
		FilterSubject: stream.EventSubject("*", string(event.Queued), "*", event.KindNotice),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 50000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("escalation: creating consumer: %w", err)
	}
	loop := &stream.Consumer{Name: consumerName, Consumer: cons, Max: 64, Log: s.env.Log, Handle: s.handle,
		JS: s.env.JS, PoisonAttempts: s.env.Config.Deliveries.PoisonAttempts}
	return loop.Start(ctx, &s.wg)
}

// Wait blocks until the consumer has stopped.
func (s *Service) Wait() { s.wg.Wait() }

func (s *Service) handle(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = s.check(ctx, m.Data())
	}
	return errs
}

// check decides about one queued event: nothing to do (normal, already
// acknowledged, withdrawn), not yet (a stream.Later until the deadline),
// or escalate.
func (s *Service) check(ctx context.Context, data []byte) error {
	q, err := event.Decode(data)
	if err != nil {
		return fault.E("escalation", fault.Poison, err)
	}
	if q.Priority != string(notice.Urgent) {
		return nil
	}
	for _, done := range []string{
		stream.EventSubject(q.Notice, string(event.Acknowledged), q.Recipient, q.Kind),
		stream.EventSubject(q.Notice, string(event.Withdrawn)),
		stream.EventSubject(q.Notice, string(event.Escalated), q.Recipient, q.Kind),
	} {
		switch _, err := stream.Get(ctx, s.events, done); {
		case err == nil:
			return nil
		case !fault.Is(err, fault.NotFound):
			return err
		}
	}
	due := q.Time.Add(s.deadline)
	if wait := due.Sub(s.env.Now()); wait > 0 {
		return &stream.Later{After: wait}
	}
	return s.escalate(ctx, q, due)
}

// escalate re-notifies the target (if any), then records the escalation.
func (s *Service) escalate(ctx context.Context, q *event.Event, due time.Time) error {
	var out []stream.Message
	a := s.env.Config.Authority(q.Recipient)
	if a != nil && a.Escalation != "" {
		msgs, err := s.renotify(ctx, q, a.Escalation, due)
		if err != nil {
			return err
		}
		out = append(out, msgs...)
	}
	ev := event.Event{Type: event.Escalated, Notice: q.Notice, Time: s.env.Now(), Actor: Name, Platform: q.Platform,
		BodySHA256: q.BodySHA256, Priority: q.Priority, Recipient: q.Recipient, Kind: q.Kind, Delivery: q.Delivery}
	em, err := ev.Message()
	if err != nil {
		return fault.E("escalation", fault.Poison, err)
	}
	// The copy and its queued event first, the escalated event last: once
	// it exists, everything it stands for is stored.
	if err := stream.FirstError(stream.PublishAll(ctx, s.env.JS, out)); err != nil {
		return err
	}
	if _, err := stream.Publish(ctx, s.env.JS, em); err != nil && !fault.Is(err, fault.Exists) {
		return err
	}
	s.escalated.WithLabelValues(q.Recipient).Inc()
	target := "none configured"
	if a != nil && a.Escalation != "" {
		target = a.Escalation
	}
	s.env.Log.Warn("escalation: urgent delivery unacknowledged past its deadline",
		zap.String("authority", q.Recipient), zap.String("delivery", q.Delivery), zap.String("target", target))
	return nil
}

// renotify builds the escalation delivery of the notice for target, and
// its queued event. Past retention (no body left) there is nothing to send.
func (s *Service) renotify(ctx context.Context, q *event.Event, target string, due time.Time) ([]stream.Message, error) {
	dm, err := stream.Get(ctx, s.deliveries, stream.DeliverySubject(q.Recipient, q.Priority, q.Delivery))
	if fault.Is(err, fault.NotFound) {
		s.env.Log.Error("escalation: delivery gone (retention); escalating without a copy", zap.String("delivery", q.Delivery))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	orig, err := delivery.Decode(dm.Data)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	body, err := stream.Get(ctx, s.notices, stream.NoticeSubject(orig.NoticeID))
	if fault.Is(err, fault.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, n, err := notice.DecodeRecord(body.Data)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	fw := delivery.Forwarded{ID: rec.ID, Platform: rec.Platform, ReceivedAt: rec.ReceivedAt, Notice: n,
		CoRecipients: []delivery.CoRecipient{},
		Escalation: &delivery.Escalation{From: q.Recipient, Delivery: q.Delivery,
			QueuedAt: module.Timestamp(q.Time), Deadline: module.Timestamp(due)}}
	if dec, err := stream.Get(ctx, s.events, stream.EventSubject(q.Notice, string(event.Decided))); err == nil {
		if de, err := event.Decode(dec.Data); err == nil && de.Decision != nil {
			for _, r := range de.Decision.Recipients {
				if r.Authority == q.Recipient {
					fw.Grounds = r.Grounds
				}
				if r.Authority != target {
					fw.CoRecipients = append(fw.CoRecipients, delivery.CoRecipient{Authority: r.Authority, Country: r.Country})
				}
			}
		}
	}
	raw, err := json.Marshal(fw)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	d := delivery.Delivery{V: delivery.Version, ID: notice.DeliveryID(rec.ID, target, event.KindEscalation),
		NoticeID: rec.ID, Type: event.KindEscalation, Priority: q.Priority, Platform: rec.Platform,
		BodySHA256: rec.BodySHA256, Notice: raw}
	if err := s.sealer.Seal(target, &d); err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	m, err := d.Message(target)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	qe := event.Event{Type: event.Queued, Notice: q.Notice, Time: s.env.Now(), Actor: Name, Platform: rec.Platform,
		BodySHA256: rec.BodySHA256, Priority: q.Priority, Recipient: target, Kind: event.KindEscalation, Delivery: d.ID}
	qm, err := qe.Message()
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	return []stream.Message{m, qm}, nil
}
