// Package routing decides, for each stored notice, which authorities must
// receive it (DSA Art. 18(2)) and puts a delivery into each one's queue. It
// also turns a platform's withdrawal into a withdrawal delivery for every
// recipient. Every output has a deterministic id and subject, so a notice
// processed twice (after a crash) yields the same events and deliveries.
package routing

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
	"github.com/noticerelay/noticerelay/pkg/jurisdiction"
	"github.com/noticerelay/noticerelay/pkg/message"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = "routing"

// consumerName is the durable consumer of the notice stream.
const consumerName = "routing"

// messagesConsumer is the durable consumer of the message stream.
const messagesConsumer = "routing-messages"

// Service is the routing service.
type Service struct {
	env     *module.Env
	router  *Router
	events  jetstream.Stream
	notices jetstream.Stream
	routed  *prometheus.CounterVec
	wg      sync.WaitGroup
	// sealer encrypts deliveries to authorities with an age recipient.
	sealer *delivery.Sealer
}

// New returns the routing service.
func New(env *module.Env) *Service {
	s := &Service{
		env: env,
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_routing_processed_total",
			Help: "Notices and withdrawals routed, by kind and outcome.",
		}, []string{"kind", "outcome"}),
	}
	env.Metrics.MustRegister(s.routed)
	return s
}

// Start creates the durable consumer and starts routing.
func (s *Service) Start(ctx context.Context) error {
	var err error
	if s.events, err = s.env.Stream(ctx, stream.Events); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	if s.notices, err = s.env.Stream(ctx, stream.Notices); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	cons, err := s.env.JS.CreateOrUpdateConsumer(ctx, stream.Notices, jetstream.ConsumerConfig{
		Durable:        consumerName,
		Description:    "routes each stored notice and withdrawal to its recipients",
		FilterSubjects: []string{stream.NoticeSubject("*"), stream.WithdrawSubject("*")},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        10 * time.Second,
		MaxDeliver:     -1,
		MaxAckPending:  4096,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("routing: creating consumer: %w", err)
	}
	if s.sealer, err = delivery.NewSealer(s.env.Config); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	if s.router, err = NewRouter(s.env.Config, s.env.Log); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	msgs, err := s.env.JS.CreateOrUpdateConsumer(ctx, stream.Messages, jetstream.ConsumerConfig{
		Durable:       messagesConsumer,
		Description:   "turns each stored message into a delivery to its recipient",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       10 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("routing: creating consumer: %w", err)
	}
	loop := &stream.Consumer{Name: consumerName, Consumer: cons, Max: 256, Workers: 2, Log: s.env.Log, Handle: s.handle,
		JS: s.env.JS, PoisonAttempts: s.env.Config.Deliveries.PoisonAttempts}
	if err := loop.Start(ctx, &s.wg); err != nil {
		return err
	}
	mloop := &stream.Consumer{Name: messagesConsumer, Consumer: msgs, Max: 64, Workers: 1, Log: s.env.Log, Handle: s.handle,
		JS: s.env.JS, PoisonAttempts: s.env.Config.Deliveries.PoisonAttempts}
	return mloop.Start(ctx, &s.wg)
}

// Wait blocks until the consumer has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// outputs is what one input message causes: events and deliveries (first)
// and the queued events (then), stored in that order within each stream.
type outputs struct {
	first, then []stream.Message
	err         error
}

func (s *Service) handle(ctx context.Context, msgs []jetstream.Msg) []error {
	outs := make([]outputs, len(msgs))
	for i, m := range msgs {
		switch {
		case strings.HasPrefix(m.Subject(), stream.NoticeSubject("")):
			outs[i] = s.route(m.Data())
			s.routed.WithLabelValues("notice", outcome(outs[i].err)).Inc()
		case strings.HasPrefix(m.Subject(), stream.WithdrawSubject("")):
			outs[i] = s.withdraw(ctx, m.Data())
			s.routed.WithLabelValues("withdrawal", outcome(outs[i].err)).Inc()
		case stream.IsMessageSubject(m.Subject()):
			outs[i] = s.message(m.Data())
			s.routed.WithLabelValues("message", outcome(outs[i].err)).Inc()
		default:
			outs[i].err = fault.Errorf("routing", fault.Poison, "unexpected subject %s", m.Subject())
		}
	}
	// One round: every stream's share goes as one batch. The queued events
	// need not wait for the deliveries: a delivery is unique by its subject,
	// so if any output failed the whole notice is simply routed again.
	s.publish(ctx, outs, func(o *outputs) []stream.Message { return append(o.first, o.then...) })
	errs := make([]error, len(msgs))
	for i := range outs {
		errs[i] = outs[i].err
	}
	return errs
}

func outcome(err error) string {
	if err != nil {
		return fault.KindOf(err).String()
	}
	return "ok"
}

// publish stores one phase of every still healthy output, pipelined, and
// marks the outputs whose messages failed.
func (s *Service) publish(ctx context.Context, outs []outputs, phase func(*outputs) []stream.Message) {
	var all []stream.Message
	var owner []int
	for i := range outs {
		if outs[i].err != nil {
			continue
		}
		for _, m := range phase(&outs[i]) {
			all = append(all, m)
			owner = append(owner, i)
		}
	}
	for j, err := range stream.PublishAll(ctx, s.env.JS, all) {
		if err != nil && !fault.Is(err, fault.Exists) && outs[owner[j]].err == nil {
			outs[owner[j]].err = err
		}
	}
}

// route decides a stored notice's recipients and builds its events and
// deliveries.
func (s *Service) route(data []byte) outputs {
	rec, n, err := notice.DecodeRecord(data)
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	received, err := time.Parse(time.RFC3339Nano, rec.ReceivedAt)
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	d := s.router.Decide(rec.Platform, n)
	if len(d.Recipients) == 0 {
		// Never dropped: the notice stays stored and is tried again until
		// the configuration gives it a recipient (Europol, as last resort).
		s.env.Log.Error("routing: no authority can receive this notice; configure Europol (country EU)",
			zap.String("notice", rec.ID))
		return outputs{err: fault.Errorf("routing", fault.Unavailable, "notice %s has no recipient in this configuration", rec.ID)}
	}
	base := event.Event{Notice: s.env.Pseudonyms.Notice(rec.ID), Platform: rec.Platform, BodySHA256: rec.BodySHA256, Priority: string(d.Priority)}
	var o outputs
	add := func(list *[]stream.Message, e event.Event) {
		m, err := e.Message()
		if err != nil && o.err == nil {
			o.err = fault.E("routing", fault.Poison, err)
		}
		*list = append(*list, m)
	}
	acc := base
	acc.Type, acc.Time, acc.Actor, acc.Category = event.Accepted, received, "intake", n.Category
	add(&o.first, acc)
	dec := base
	dec.Type, dec.Time, dec.Actor, dec.Decision = event.Decided, s.env.Now(), Name, &d
	add(&o.first, dec)
	for _, r := range d.Recipients {
		fw := delivery.Forwarded{ID: rec.ID, Platform: rec.Platform, ReceivedAt: rec.ReceivedAt, Notice: n,
			Grounds: r.Grounds, CoRecipients: coRecipients(d, r.Authority)}
		m, err := s.deliveryMessage(rec.ID, r.Authority, event.KindNotice, string(d.Priority), rec.BodySHA256, fw)
		if err != nil {
			return outputs{err: err}
		}
		o.first = append(o.first, m)
		q := base
		q.Type, q.Time, q.Actor = event.Queued, s.env.Now(), Name
		q.Recipient, q.Kind, q.Delivery = r.Authority, event.KindNotice, notice.DeliveryID(rec.ID, r.Authority, event.KindNotice)
		add(&o.then, q)
	}
	return o
}

// withdraw builds the withdrawal deliveries of a notice for every recipient
// the notice was routed to.
func (s *Service) withdraw(ctx context.Context, data []byte) outputs {
	wd, err := notice.DecodeWithdrawal(data)
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	requested, err := time.Parse(time.RFC3339Nano, wd.RequestedAt)
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	pseudonym := s.env.Pseudonyms.Notice(wd.NoticeID)
	m, err := stream.Get(ctx, s.events, stream.EventSubject(pseudonym, string(event.Decided)))
	if err != nil {
		// Not routed yet: the notice comes first; try again shortly.
		return outputs{err: fmt.Errorf("routing: withdrawal of %s before its decision: %w", wd.NoticeID, err)}
	}
	dec, err := event.Decode(m.Data)
	if err != nil || dec.Decision == nil {
		return outputs{err: fault.Errorf("routing", fault.Poison, "decision of %s unreadable: %v", wd.NoticeID, err)}
	}
	d := dec.Decision
	var o outputs
	ev := event.Event{Type: event.Withdrawn, Notice: pseudonym, Time: requested, Actor: "intake",
		Platform: wd.Platform, BodySHA256: dec.BodySHA256, Priority: string(d.Priority)}
	em, err := ev.Message()
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	o.first = append(o.first, em)
	// The withdrawal carries the notice while its body is kept, so that the
	// authority can match it; past retention only the reference is left.
	withdrawn, receivedAt := &notice.Notice{Reference: wd.Reference}, ""
	if body, err := stream.Get(ctx, s.notices, stream.NoticeSubject(wd.NoticeID)); err == nil {
		if rec, n, err := notice.DecodeRecord(body.Data); err == nil {
			withdrawn, receivedAt = n, rec.ReceivedAt
		}
	}
	for _, r := range d.Recipients {
		fw := delivery.Forwarded{ID: wd.NoticeID, Platform: wd.Platform, ReceivedAt: receivedAt, Notice: withdrawn,
			Grounds: r.Grounds, CoRecipients: coRecipients(*d, r.Authority),
			Withdrawal: &delivery.Withdrawal{Reason: wd.Reason, RequestedAt: wd.RequestedAt}}
		dm, err := s.deliveryMessage(wd.NoticeID, r.Authority, event.KindWithdrawal, string(d.Priority), dec.BodySHA256, fw)
		if err != nil {
			return outputs{err: err}
		}
		o.first = append(o.first, dm)
		q := ev
		q.Type, q.Time, q.Actor = event.Queued, s.env.Now(), Name
		q.Recipient, q.Kind, q.Delivery = r.Authority, event.KindWithdrawal, notice.DeliveryID(wd.NoticeID, r.Authority, event.KindWithdrawal)
		qm, err := q.Message()
		if err != nil {
			return outputs{err: fault.E("routing", fault.Poison, err)}
		}
		o.then = append(o.then, qm)
	}
	return o
}

// message builds the message_sent event of a stored message and its
// delivery: into the authority's queue (sealed to its age recipient), or
// into the platform's notify queue when it has a notify URL. A message to
// a platform without one is only kept, for GET /v1/notices/{id}/messages.
func (s *Service) message(data []byte) outputs {
	rec, err := message.Decode(data)
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	sent, err := time.Parse(time.RFC3339Nano, rec.SentAt)
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	var o outputs
	ev := rec.Event(s.env.Pseudonyms, event.MessageSent, sent)
	em, err := ev.Message()
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	o.then = append(o.then, em)
	d, err := rec.Delivery()
	if err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	subject := stream.DeliverySubject(rec.To, rec.Priority, d.ID)
	if rec.ToPlatform() {
		if p := s.env.Config.Platform(rec.Platform); p == nil || p.Notify == nil {
			return o
		}
		subject = stream.DeliverySubject(rec.Platform, stream.NotifyPriority, d.ID)
	} else if err := s.sealer.Seal(rec.To, d); err != nil {
		return outputs{err: fault.E("routing", fault.Poison, err)}
	}
	dm, err := json.Marshal(d)
	if err != nil {
		return outputs{err: fault.E("routing: encoding delivery", fault.Poison, err)}
	}
	o.first = append(o.first, stream.Message{Subject: subject, ID: d.ID, Data: dm})
	return o
}

func coRecipients(d jurisdiction.Decision, except string) []delivery.CoRecipient {
	out := []delivery.CoRecipient{}
	for _, r := range d.Recipients {
		if r.Authority != except {
			out = append(out, delivery.CoRecipient{Authority: r.Authority, Country: r.Country})
		}
	}
	return out
}

func (s *Service) deliveryMessage(noticeID, authority, kind, priority, bodySHA256 string, fw delivery.Forwarded) (stream.Message, error) {
	body, err := json.Marshal(fw)
	if err != nil {
		return stream.Message{}, fault.E("routing: encoding delivery", fault.Poison, err)
	}
	id := notice.DeliveryID(noticeID, authority, kind)
	dl := delivery.Delivery{V: delivery.Version, ID: id, NoticeID: noticeID,
		Type: kind, Priority: priority, Platform: fw.Platform, BodySHA256: bodySHA256, Notice: body}
	if err := s.sealer.Seal(authority, &dl); err != nil {
		return stream.Message{}, fault.E("routing", fault.Poison, err)
	}
	data, err := json.Marshal(dl)
	if err != nil {
		return stream.Message{}, fault.E("routing: encoding delivery", fault.Poison, err)
	}
	return stream.Message{Subject: stream.DeliverySubject(authority, priority, id), ID: id, Data: data}, nil
}
