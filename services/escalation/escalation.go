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
//
// A second consumer, escalation-followups (followups.go), hands a
// recipient that a notice gains after its follow-ups were routed (an
// escalation target) those follow-ups.
package escalation

import (
	"context"
	"fmt"
	"sync"
	"time"

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

// Service is the escalation service.
type Service struct {
	env      *module.Env
	deadline time.Duration
	sealer   *delivery.Sealer
	// read reads events, deliveries and notice bodies.
	read stream.Reader
	// events scans the events stream through its leader: the follow-ups
	// and the recipients of a notice.
	events    stream.Scanner
	escalated *prometheus.CounterVec
	wg        sync.WaitGroup
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
	if s.read, err = stream.OpenStreams(ctx, s.env.JS, stream.Events, stream.Notices, stream.Deliveries); err != nil {
		return fmt.Errorf("escalation: %w", err)
	}
	cfg := stream.Durable(stream.EscalationConsumer, "escalates urgent notice deliveries left unacknowledged past their deadline",
		event.Filter(event.Queued, event.KindNotice))
	cfg.AckWait, cfg.MaxAckPending = 30*time.Second, 50000
	s.events = stream.NewLeaderReader(s.env.JS, stream.Events)
	fcfg := stream.Durable(stream.EscalationFollowUpsConsumer, "hands each recipient a notice gains (an escalation target) its follow-ups and corrections",
		event.Filter(event.Queued, event.KindNotice), event.Filter(event.Queued, event.KindEscalation))
	for _, c := range []*stream.Consumer{
		{Name: stream.EscalationConsumer, Stream: stream.Events, Config: cfg, Max: 64, Stage: s.stage},
		{Name: stream.EscalationFollowUpsConsumer, Stream: stream.Events, Config: fcfg, Max: 64, Stage: s.followUps},
	} {
		c.Store, c.JS, c.Log, c.PoisonAttempts = s.env.Publisher, s.env.JS, s.env.Log, s.env.Config.Deliveries.PoisonAttempts
		if err := c.Start(ctx, &s.wg); err != nil {
			return fmt.Errorf("escalation: %w", err)
		}
	}
	return nil
}

// Wait blocks until the consumer has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// stage decides about one queued event: nothing to do (normal, already
// acknowledged, withdrawn), not yet (a stream.Later until the deadline),
// or escalate.
func (s *Service) stage(ctx context.Context, in stream.Input) ([]stream.Message, error) {
	q, err := event.Decode(in.Data)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	if q.Priority != string(notice.Urgent) {
		return nil, nil
	}
	for _, done := range []string{
		event.SubjectOf(q.Notice, event.Acknowledged, q.Recipient, q.Kind),
		event.SubjectOf(q.Notice, event.Withdrawn, "", ""),
		event.SubjectOf(q.Notice, event.Escalated, q.Recipient, q.Kind),
	} {
		switch _, err := s.read.Read(ctx, done); {
		case err == nil:
			return nil, nil
		case !fault.Is(err, fault.NotFound):
			return nil, err
		}
	}
	due := q.Time.Add(s.deadline)
	if wait := due.Sub(s.env.Now()); wait > 0 {
		return nil, &stream.Later{After: wait}
	}
	return s.escalate(ctx, q, due)
}

// escalate returns the copy for the target (if any) and its queued event,
// then the escalated event, stored last: once it exists, everything it
// stands for is stored.
func (s *Service) escalate(ctx context.Context, q *event.Event, due time.Time) ([]stream.Message, error) {
	var out []stream.Message
	target := "none configured"
	if a := s.env.Config.Authority(q.Recipient); a != nil && a.Escalation != "" {
		msgs, err := s.renotify(ctx, q, a.Escalation, due)
		if err != nil {
			return nil, err
		}
		out, target = msgs, a.Escalation
	}
	ev := event.Event{Type: event.Escalated, Notice: q.Notice, Time: s.env.Now(), Actor: Name, Platform: q.Platform,
		BodySHA256: q.BodySHA256, Priority: q.Priority, Recipient: q.Recipient, Kind: q.Kind, Delivery: q.Delivery}
	em, err := ev.Message()
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	em.Last = true
	s.escalated.WithLabelValues(q.Recipient).Inc()
	s.env.Log.Warn("escalation: urgent delivery unacknowledged past its deadline",
		zap.String("authority", q.Recipient), zap.String("delivery", q.Delivery), zap.String("target", target))
	return append(out, em), nil
}

// renotify builds the escalation delivery of the notice for target, and
// its queued event. Past retention (no body left) there is nothing to send.
func (s *Service) renotify(ctx context.Context, q *event.Event, target string, due time.Time) ([]stream.Message, error) {
	dm, err := s.read.Read(ctx, stream.DeliverySubject(q.Recipient, q.Priority, q.Delivery))
	if fault.Is(err, fault.NotFound) {
		s.env.Log.Error("escalation: delivery gone (retention); escalating without a copy", zap.String("delivery", q.Delivery))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	orig, err := delivery.Decode(dm)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	body, err := s.read.Read(ctx, stream.NoticeSubject(orig.NoticeID))
	if fault.Is(err, fault.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, n, err := notice.DecodeRecord(body)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	fw := delivery.Forwarded{ID: rec.ID, Platform: rec.Platform, ReceivedAt: rec.ReceivedAt, Notice: n,
		CoRecipients: []delivery.CoRecipient{},
		Escalation: &delivery.Escalation{From: q.Recipient, Delivery: q.Delivery,
			QueuedAt: module.Timestamp(q.Time), Deadline: module.Timestamp(due)}}
	// The decision gives the grounds and who else received the notice;
	// without one (never routed?) the copy goes without. Any other failure
	// to read it is retried: the copy's id is fixed, so one written
	// without them could never be corrected.
	switch raw, err := s.read.Read(ctx, event.SubjectOf(q.Notice, event.Decided, "", "")); {
	case err == nil:
		if de, err := event.Decode(raw); err == nil && de.Decision != nil {
			fw.CoRecipients = delivery.CoRecipients(de.Decision, target)
			for _, r := range de.Decision.Recipients {
				if r.Authority == q.Recipient {
					fw.Grounds = r.Grounds
				}
			}
		}
	case !fault.Is(err, fault.NotFound):
		return nil, err
	}
	m, err := s.sealer.Build(fw, target, event.KindEscalation, q.Priority, rec.BodySHA256)
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	qe := event.Event{Type: event.Queued, Notice: q.Notice, Time: s.env.Now(), Actor: Name, Platform: rec.Platform,
		BodySHA256: rec.BodySHA256, Priority: q.Priority, Recipient: target, Kind: event.KindEscalation, Delivery: m.ID}
	qm, err := qe.Message()
	if err != nil {
		return nil, fault.E("escalation", fault.Poison, err)
	}
	return []stream.Message{m, qm}, nil
}
