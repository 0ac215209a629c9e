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

// Service is the routing service.
type Service struct {
	env    *module.Env
	router *Router
	// read reads the decision and the body of a withdrawn notice.
	read stream.Reader
	// events scans the events stream through its leader: the escalations
	// of a notice that a follow-up names.
	events stream.Scanner
	routed *prometheus.CounterVec
	wg     sync.WaitGroup
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

// prepare builds what the stage needs of the configuration.
func (s *Service) prepare() error {
	var err error
	if s.sealer, err = delivery.NewSealer(s.env.Config); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	if s.router, err = NewRouter(s.env.Config, s.env.Log); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	return nil
}

// Start creates the durable consumers and starts routing.
func (s *Service) Start(ctx context.Context) error {
	var err error
	if s.read, err = stream.OpenStreams(ctx, s.env.JS, stream.Events, stream.Notices); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	s.events = stream.NewLeaderReader(s.env.JS, stream.Events)
	if err := s.prepare(); err != nil {
		return err
	}
	for _, c := range []*stream.Consumer{
		{Name: stream.RoutingConsumer, Stream: stream.Notices, Max: 256, Workers: 2,
			Config: stream.Durable(stream.RoutingConsumer, "routes each stored notice and withdrawal to its recipients",
				stream.NoticeSubject("*"), stream.WithdrawSubject("*"))},
		{Name: stream.RoutingMessagesConsumer, Stream: stream.Messages, Max: 64, Workers: 1,
			Config: stream.Durable(stream.RoutingMessagesConsumer, "turns each stored message into a delivery to its recipient")},
	} {
		c.Stage, c.Store, c.JS, c.Log, c.PoisonAttempts = s.stage, s.env.Publisher, s.env.JS, s.env.Log, s.env.Config.Deliveries.PoisonAttempts
		if err := c.Start(ctx, &s.wg); err != nil {
			return fmt.Errorf("routing: %w", err)
		}
	}
	return nil
}

// Wait blocks until the consumer has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// stage routes one stored notice, withdrawal or message: it returns the
// events and deliveries it causes, in the order they are stored within
// each stream. A delivery is unique by its subject, so if any output
// fails to be stored the whole input is simply routed again.
func (s *Service) stage(ctx context.Context, in stream.Input) ([]stream.Message, error) {
	var kind string
	var out []stream.Message
	var err error
	switch {
	case strings.HasPrefix(in.Subject, stream.NoticeSubject("")):
		kind = "notice"
		out, err = s.route(ctx, in.Data)
	case strings.HasPrefix(in.Subject, stream.WithdrawSubject("")):
		kind = "withdrawal"
		out, err = s.withdraw(ctx, in.Data)
	case stream.IsMessageSubject(in.Subject):
		kind = "message"
		out, err = s.message(in.Data)
	default:
		return nil, fault.Errorf("routing", fault.Poison, "unexpected subject %s", in.Subject)
	}
	s.routed.WithLabelValues(kind, outcome(err)).Inc()
	return out, err
}

func outcome(err error) string {
	if err != nil {
		return fault.KindOf(err).String()
	}
	return "ok"
}

// poison marks an output that cannot be built: it never will be.
func poison(err error) error { return fault.E("routing", fault.Poison, err) }

// route decides a stored notice's recipients and builds its events and
// deliveries: accepted and decided, then each recipient's delivery, then
// their queued events.
func (s *Service) route(ctx context.Context, data []byte) ([]stream.Message, error) {
	rec, n, err := notice.DecodeRecord(data)
	if err != nil {
		return nil, poison(err)
	}
	received, err := time.Parse(time.RFC3339Nano, rec.ReceivedAt)
	if err != nil {
		return nil, poison(err)
	}
	d := s.router.Decide(rec.Platform, n)
	// A follow-up or correction also goes to every recipient of the
	// notices it names (contract section 9).
	pseudonym := s.env.Pseudonyms.Notice(rec.ID)
	earlier, linked, err := s.earlierDecisions(ctx, rec, pseudonym, received)
	if err != nil {
		return nil, err
	}
	d = jurisdiction.FollowUp(d, earlier...)
	if len(d.Recipients) == 0 {
		// Never dropped: the notice stays stored and is tried again until
		// the configuration gives it a recipient (Europol, as last resort).
		s.env.Log.Error("routing: no authority can receive this notice; configure Europol (country EU)",
			zap.String("notice", rec.ID))
		return nil, fault.Errorf("routing", fault.Unavailable, "notice %s has no recipient in this configuration", rec.ID)
	}
	base := event.Event{Notice: pseudonym, Platform: rec.Platform, BodySHA256: rec.BodySHA256, Priority: string(d.Priority)}
	acc, dec := base, base
	acc.Type, acc.Time, acc.Actor, acc.Category = event.Accepted, received, "intake", n.Category
	dec.Type, dec.Time, dec.Actor, dec.Decision = event.Decided, s.env.Now(), Name, &d
	dec.FollowUpOf, dec.Supersedes = s.earlierPseudonyms(rec)
	fw := delivery.Forwarded{ID: rec.ID, Platform: rec.Platform, ReceivedAt: rec.ReceivedAt, Notice: n,
		FollowUpOf: rec.FollowUpOfID, Supersedes: rec.SupersedesID}
	return s.deliver(append([]event.Event{acc, dec}, linked...), base, &d, fw, event.KindNotice)
}

// deliver returns events, then a delivery of fw of kind to every recipient
// of d, then the queued events (base with each recipient). The queued
// events are marked Last: a queued event says that its delivery is in the
// recipient's queue, so it is stored only once the delivery is. Before,
// both went out in one round, and a reader of the queued event (the
// status, the attachments stage) could act before the delivery existed.
func (s *Service) deliver(events []event.Event, base event.Event, d *jurisdiction.Decision, fw delivery.Forwarded, kind string) ([]stream.Message, error) {
	var out, queued []stream.Message
	for _, e := range events {
		m, err := e.Message()
		if err != nil {
			return nil, poison(err)
		}
		out = append(out, m)
	}
	for _, r := range d.Recipients {
		fw.Grounds, fw.CoRecipients = r.Grounds, delivery.CoRecipients(d, r.Authority)
		m, err := s.sealer.Build(fw, r.Authority, kind, string(d.Priority), base.BodySHA256)
		if err != nil {
			return nil, poison(err)
		}
		out = append(out, m)
		q := base
		q.Type, q.Time, q.Actor, q.Recipient, q.Kind, q.Delivery = event.Queued, s.env.Now(), Name, r.Authority, kind, m.ID
		qm, err := q.Message()
		if err != nil {
			return nil, poison(err)
		}
		qm.Last = true
		queued = append(queued, qm)
	}
	return append(out, queued...), nil
}

// withdraw builds the withdrawal deliveries of a notice for every recipient
// the notice was routed to, and every authority queued it beyond its
// decision so far (by escalation, or as a follow-up of a notice escalated
// after it was routed).
func (s *Service) withdraw(ctx context.Context, data []byte) ([]stream.Message, error) {
	wd, err := notice.DecodeWithdrawal(data)
	if err != nil {
		return nil, poison(err)
	}
	requested, err := time.Parse(time.RFC3339Nano, wd.RequestedAt)
	if err != nil {
		return nil, poison(err)
	}
	pseudonym := s.env.Pseudonyms.Notice(wd.NoticeID)
	raw, err := s.read.Read(ctx, event.SubjectOf(pseudonym, event.Decided, "", ""))
	if err != nil {
		// Not routed yet: the notice comes first; try again shortly.
		return nil, fmt.Errorf("routing: withdrawal of %s before its decision: %w", wd.NoticeID, err)
	}
	dec, err := event.Decode(raw)
	if err != nil || dec.Decision == nil {
		return nil, fault.Errorf("routing", fault.Poison, "decision of %s unreadable: %v", wd.NoticeID, err)
	}
	// The withdrawal carries the notice while its body is kept, so that the
	// authority can match it; past retention only the reference is left.
	// Any other failure to read it is retried: the delivery's id is fixed,
	// so one written without the notice could never be corrected.
	fw := delivery.Forwarded{ID: wd.NoticeID, Platform: wd.Platform, Notice: &notice.Notice{Reference: wd.Reference},
		Withdrawal: &delivery.Withdrawal{Reason: wd.Reason, RequestedAt: wd.RequestedAt}}
	switch body, err := s.read.Read(ctx, stream.NoticeSubject(wd.NoticeID)); {
	case err == nil:
		if rec, n, err := notice.DecodeRecord(body); err == nil {
			fw.Notice, fw.ReceivedAt = n, rec.ReceivedAt
			fw.FollowUpOf, fw.Supersedes = rec.FollowUpOfID, rec.SupersedesID
		}
	case !fault.Is(err, fault.NotFound):
		return nil, fmt.Errorf("routing: reading the body of withdrawn notice %s: %w", wd.NoticeID, err)
	}
	// The authorities that received a copy by escalation have the notice
	// too: they are told of the withdrawal like its recipients.
	escalated, err := s.escalated(ctx, pseudonym)
	if err != nil {
		return nil, fault.E("routing: reading the escalations of withdrawn notice "+wd.NoticeID, fault.KindOf(err), err)
	}
	d := s.router.WithEscalated(*dec.Decision, escalated...)
	ev := event.Event{Type: event.Withdrawn, Notice: pseudonym, Time: requested, Actor: "intake",
		Platform: wd.Platform, BodySHA256: dec.BodySHA256, Priority: string(dec.Decision.Priority)}
	return s.deliver([]event.Event{ev}, ev, &d, fw, event.KindWithdrawal)
}

// message builds the message_sent event of a stored message and its
// delivery: into the authority's queue (sealed to its age recipient), or
// into the platform's notify queue when it has a notify URL. A message to
// a platform without one is only kept, for GET /v1/notices/{id}/messages.
func (s *Service) message(data []byte) ([]stream.Message, error) {
	rec, err := message.Decode(data)
	if err != nil {
		return nil, poison(err)
	}
	sent, err := time.Parse(time.RFC3339Nano, rec.SentAt)
	if err != nil {
		return nil, poison(err)
	}
	ev := rec.Event(s.env.Pseudonyms, event.MessageSent, sent)
	em, err := ev.Message()
	if err != nil {
		return nil, poison(err)
	}
	d, err := rec.Delivery()
	if err != nil {
		return nil, poison(err)
	}
	subject := stream.DeliverySubject(rec.To, rec.Priority, d.ID)
	if rec.ToPlatform() {
		if p := s.env.Config.Platform(rec.Platform); p == nil || p.Notify == nil {
			return []stream.Message{em}, nil
		}
		subject = stream.DeliverySubject(rec.Platform, stream.NotifyPriority, d.ID)
	} else if err := s.sealer.Seal(rec.To, d); err != nil {
		return nil, poison(err)
	}
	dm, err := json.Marshal(d)
	if err != nil {
		return nil, poison(err)
	}
	return []stream.Message{{Subject: subject, ID: d.ID, Data: dm}, em}, nil
}
