// Package inbox is the authorities' pull API. Each authority has two
// durable consumers (urgent and normal) on its own delivery subjects; a
// delivery handed out is leased to the caller for the consumer's ack wait
// and handed out again, under the same id, until the authority
// acknowledges it. The acknowledgement is recorded as a lifecycle event
// before the answer, so a receipt survives any crash.
package inbox

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/health"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = "inbox"

// Service is the inbox service.
type Service struct {
	env        *module.Env
	lease      time.Duration
	deliveries jetstream.Stream
	events     jetstream.Stream
	consumers  map[string][]jetstream.Consumer // authority -> by priority

	mu     sync.Mutex
	leases map[string]lease // delivery id -> the message last handed out
	wg     sync.WaitGroup

	handedOut *prometheus.CounterVec
	acked     *prometheus.CounterVec
}

type lease struct {
	msg   jetstream.Msg
	until time.Time // as told to the caller (the service's clock)
	ends  time.Time // the same on the wall clock, for holding it
	keep  bool      // the consumer's AckWait is shorter: send progress acks
}

// Hold is how long the server keeps a handed-out delivery from everyone
// else on its own (the AckWait of an inbox consumer, when inbox.lease is
// longer): the process that handed it out keeps it held, with a progress
// ack every Hold/4, until the caller's lease ends or the caller
// acknowledges it. When that process dies, or cannot reach NATS for Hold,
// the server hands the delivery out again after Hold instead of after the
// whole lease. Authorities consuming from NATS directly keep AckWait =
// inbox.lease: their clients do not send progress acks.
const Hold = 20 * time.Second

// ackWait is the AckWait of an authority's inbox consumers.
func (s *Service) ackWait(natsClients bool) time.Duration {
	if natsClients || s.lease <= Hold {
		return s.lease
	}
	return Hold
}

// New returns the inbox service.
func New(env *module.Env) *Service {
	s := &Service{
		env:       env,
		lease:     time.Duration(env.Config.Inbox.Lease),
		consumers: map[string][]jetstream.Consumer{},
		leases:    map[string]lease{},
		handedOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_inbox_handed_out_total",
			Help: "Deliveries handed out by the inbox, by authority and priority.",
		}, []string{"authority", "priority"}),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_inbox_acknowledged_total",
			Help: "Acknowledgements recorded, by authority.",
		}, []string{"authority"}),
	}
	env.Metrics.MustRegister(s.handedOut, s.acked)
	return s
}

// Start creates every authority's consumers and registers the routes.
func (s *Service) Start(ctx context.Context) error {
	var err error
	if s.deliveries, err = s.env.Stream(ctx, stream.Deliveries); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	if s.events, err = s.env.Stream(ctx, stream.Events); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	for _, a := range s.env.Config.Authorities {
		if a.Webhook() {
			continue // the push service drains its queue (docs/delivery.md)
		}
		for _, p := range delivery.Priorities() {
			cfg := stream.Durable(delivery.ConsumerName(a.ID, p), fmt.Sprintf("%s deliveries of %s", p, a.ID),
				stream.DeliveryFilter(a.ID, p))
			cfg.AckWait, cfg.MaxAckPending = s.ackWait(a.ConsumesNATS()), 10000
			// An authority that acks on NATS directly: every ack raises an
			// advisory, captured in NR_RECEIPTS (services/receipts).
			cfg.SampleFrequency = sampling(a.ConsumesNATS())
			c, err := s.env.JS.CreateOrUpdateConsumer(ctx, stream.Deliveries, cfg)
			if err != nil {
				return fmt.Errorf("inbox: creating consumer for %s: %w", a.ID, err)
			}
			s.consumers[a.ID] = append(s.consumers[a.ID], c)
		}
	}
	s.env.Mux.HandleFunc("GET /v1/inbox", s.list)
	s.env.Mux.HandleFunc("POST /v1/inbox/ack", s.ackMany)
	s.env.Mux.HandleFunc("POST /v1/inbox/{id}/ack", s.ackOne)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.hold(ctx)
	}()
	return nil
}

// Wait blocks until the service has released its leases (after ctx of
// Start ended, once the HTTP server no longer hands any out).
func (s *Service) Wait() { s.wg.Wait() }

// hold keeps the deliveries this process handed out held on the server
// until their leases end (see Hold); when ctx ends (a graceful shutdown,
// after the last request) it releases every lease not acknowledged yet, so
// that another process can hand those deliveries out at once.
func (s *Service) hold(ctx context.Context) {
	t := time.NewTicker(Hold / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			var held []jetstream.Msg
			now := time.Now()
			for id, l := range s.leases {
				if now.Before(l.ends) {
					held = append(held, l.msg)
				}
				delete(s.leases, id)
			}
			s.mu.Unlock()
			s.release(held)
			return
		case <-t.C:
		}
		s.mu.Lock()
		now := time.Now()
		for id, l := range s.leases {
			switch {
			case !now.Before(l.ends):
				delete(s.leases, id)
			case l.keep && now.Add(Hold).Before(l.ends.Add(Hold/4)):
				// Held until the lease's end, at most Hold/4 after it.
				_ = l.msg.InProgress()
			}
		}
		s.mu.Unlock()
	}
}

// release makes deliveries fetched but not (or no longer) handed out
// available to the next fetch at once: a nak without delay, flushed so that
// it reaches the server now. A nak lost with the connection leaves the
// delivery to the server's AckWait (Hold).
func (s *Service) release(msgs []jetstream.Msg) {
	if len(msgs) == 0 {
		return
	}
	for _, m := range msgs {
		_ = m.Nak()
	}
	if err := s.env.NC.FlushTimeout(2 * time.Second); err != nil {
		s.env.Log.Debug("inbox: releasing deliveries", zap.Int("deliveries", len(msgs)), zap.Error(err))
	}
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	p, release, ok := s.env.Admit(w, r, auth.Authority, nil)
	if !ok {
		return
	}
	defer release()
	limit := 10
	if v := r.URL.Query().Get("max"); v != "" || r.URL.Query().Has("max") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			httpapi.BadRequest(w, "invalid query", httpapi.FieldError{Field: "max", Message: "must be a whole number from 1 to 100"})
			return
		}
		limit = n
	}
	if a := s.env.Config.Authority(p.ID); a != nil && a.Webhook() {
		httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusConflict, Title: "deliveries are pushed",
			Detail: "this authority receives its deliveries by webhook, not from the inbox"})
		return
	}
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	out, err := s.take(ctx, p.ID, limit)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if r.Context().Err() != nil {
		// The caller is gone and will never see them: release them now
		// rather than when their lease ends.
		s.unlease(out)
		return
	}
	in := delivery.Inbox{Deliveries: out, Authority: &delivery.InboxAuthority{ID: p.ID}}
	if a := s.env.Config.Authority(p.ID); a != nil {
		in.Authority.Name, in.Authority.Country = a.Name, a.Country
	}
	httpapi.JSON(w, http.StatusOK, in)
}

// take leases up to limit deliveries of authority, urgent ones first.
func (s *Service) take(ctx context.Context, authority string, limit int) ([]delivery.Out, error) {
	var msgs []jetstream.Msg
	for _, c := range s.consumers[authority] {
		if len(msgs) >= limit {
			break
		}
		got, err := s.fetch(ctx, c, limit-len(msgs))
		msgs = append(msgs, got...)
		if err != nil && len(msgs) == 0 {
			return nil, err
		}
		if err != nil {
			break // hand out what was read; the rest waits for the next call
		}
	}
	now := s.env.Now()
	until := now.Add(s.lease)
	out := make([]delivery.Out, 0, len(msgs))
	var events []stream.Message
	var leased []jetstream.Msg
	for _, m := range msgs {
		d, err := delivery.Decode(m.Data())
		if err != nil {
			stream.Poisoned(ctx, s.env.JS, s.env.Log, m, "inbox", s.env.Config.Deliveries.PoisonAttempts,
				fault.E("inbox: unreadable delivery", fault.Poison, err))
			continue
		}
		if held, err := delivery.Withheld(ctx, s.events, s.env.Pseudonyms, d); err != nil {
			s.release(msgs)
			return nil, err
		} else if held {
			stream.Ack(s.env.Log, Name, m) // a file of a withdrawn notice, never handed out
			continue
		}
		// A delivery handed out before may have been acknowledged since
		// (through another process, or before a restart, when the ack could
		// not reach its lease): settle it instead of handing it out again.
		// A first hand-out cannot have been acknowledged: nobody knew its id.
		attempt := 0
		if md, err := m.Metadata(); err == nil {
			attempt = int(md.NumDelivered)
		}
		if attempt != 1 {
			ev := d.Event(s.env.Pseudonyms, event.Acknowledged, authority, Name, s.env.Now())
			if _, err := stream.Get(ctx, s.events, ev.Subject()); err == nil {
				stream.Ack(s.env.Log, Name, m)
				continue
			} else if !fault.Is(err, fault.NotFound) {
				s.release(msgs)
				return nil, err
			}
		}
		dev := d.Event(s.env.Pseudonyms, event.Delivered, authority, Name, s.env.Now())
		dev.Time = now
		em, err := dev.Message()
		if err != nil {
			s.release(msgs)
			return nil, fault.E("inbox", fault.Internal, err)
		}
		events = append(events, em)
		leased = append(leased, m)
		o := d.Out()
		o.LeasedUntil = module.Timestamp(until)
		o.Attempt = attempt
		out = append(out, o)
	}
	if err := stream.Store(ctx, s.env.Publisher, events...); err != nil {
		s.release(leased)
		return nil, err
	}
	s.mu.Lock()
	for id, l := range s.leases {
		if now.After(l.until) {
			delete(s.leases, id)
		}
	}
	ends := time.Now().Add(s.lease)
	keep := false
	if a := s.env.Config.Authority(authority); a != nil {
		keep = s.ackWait(a.ConsumesNATS()) < s.lease
	}
	for i, m := range leased {
		s.leases[out[i].ID] = lease{msg: m, until: until, ends: ends, keep: keep}
		s.handedOut.WithLabelValues(authority, out[i].Priority).Inc()
	}
	s.mu.Unlock()
	return out, nil
}

// unlease releases deliveries just leased, which their caller never got.
func (s *Service) unlease(out []delivery.Out) {
	s.mu.Lock()
	var msgs []jetstream.Msg
	for _, d := range out {
		if l, ok := s.leases[d.ID]; ok {
			msgs = append(msgs, l.msg)
			delete(s.leases, d.ID)
		}
	}
	s.mu.Unlock()
	s.release(msgs)
}

func (s *Service) ackOne(w http.ResponseWriter, r *http.Request) {
	p, release, ok := s.env.Admit(w, r, auth.Authority, nil)
	if !ok {
		return
	}
	defer release()
	id := r.PathValue("id")
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	status, err := s.ack(ctx, p.ID, []string{id})
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if status[0] == http.StatusNotFound {
		httpapi.NotFound(w, "delivery")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) ackMany(w http.ResponseWriter, r *http.Request) {
	var req delivery.AckRequest
	p, release, ok := s.env.Admit(w, r, auth.Authority, func() bool {
		return httpapi.DecodeBody(w, r, &req, httpapi.LargeBody, time.Duration(s.env.Config.HTTP.BodyTimeout), `{"ids": ["<delivery id>", ...]}`)
	})
	if !ok {
		return
	}
	defer release()
	if len(req.IDs) == 0 || len(req.IDs) > 100 {
		httpapi.BadRequest(w, "invalid acknowledgement", httpapi.FieldError{Field: "ids", Message: "must list 1 to 100 delivery ids"})
		return
	}
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	status, err := s.ack(ctx, p.ID, req.IDs)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	res := make([]delivery.AckResult, len(req.IDs))
	for i, id := range req.IDs {
		res[i] = delivery.AckResult{ID: id, Status: status[i]}
	}
	httpapi.JSON(w, http.StatusOK, delivery.AckResults{Results: res})
}

// ack records authority's receipt of each delivery id and answers a status
// per id: 204 recorded (now or before), 404 not a delivery of authority.
func (s *Service) ack(ctx context.Context, authority string, ids []string) ([]int, error) {
	status := make([]int, len(ids))
	var events []stream.Message
	var which []int
	for i, id := range ids {
		status[i] = http.StatusNotFound
		if !notice.ValidID(id) {
			continue
		}
		d, err := s.find(ctx, authority, id)
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ev := d.Event(s.env.Pseudonyms, event.Acknowledged, authority, Name, s.env.Now())
		m, err := ev.Message()
		if err != nil {
			return nil, fault.E("inbox", fault.Internal, err)
		}
		events = append(events, m)
		which = append(which, i)
	}
	errs := s.env.Publisher.PublishAll(ctx, events)
	if err := stream.FirstError(errs); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for j, i := range which {
		status[i] = http.StatusNoContent
		if errs[j] == nil {
			s.acked.WithLabelValues(authority).Inc()
		}
		if l, ok := s.leases[ids[i]]; ok {
			stream.Ack(s.env.Log, Name, l.msg)
			delete(s.leases, ids[i])
		}
	}
	return status, nil
}

// find returns authority's delivery id, looking in its own subjects only:
// another authority's delivery is simply not found.
func (s *Service) find(ctx context.Context, authority, id string) (*delivery.Delivery, error) {
	// A delivery this process leased is at hand: no read needed. The lease
	// table is keyed by delivery id, and its subject names the authority.
	s.mu.Lock()
	l, ok := s.leases[id]
	s.mu.Unlock()
	if ok {
		for _, p := range delivery.Priorities() {
			if l.msg.Subject() != stream.DeliverySubject(authority, p, id) {
				continue
			}
			if d, err := delivery.Decode(l.msg.Data()); err == nil {
				return d, nil
			}
		}
	}
	return delivery.Find(ctx, s.deliveries, authority, id)
}

// sampling is the ack sampling of a consumer: all acks for an authority
// that consumes from NATS directly, none otherwise.
func sampling(nats bool) string {
	if nats {
		return "100%"
	}
	return ""
}

// noAnswer tells a fetch the server answered (at once, with messages or
// "no messages") from one nats.go ended on its own after a second of
// silence, without an error.
const noAnswer = 750 * time.Millisecond

// fetch leases up to n messages of c. A fetch the server did not answer is
// an error, never an empty queue: an authority reading an empty inbox
// would believe nothing waits (contract section 10).
func (s *Service) fetch(ctx context.Context, c jetstream.Consumer, n int) ([]jetstream.Msg, error) {
	if !s.env.NC.IsConnected() {
		// Not even sent: a request buffered for the reconnection would
		// lease messages to an inbox nobody reads any more.
		return nil, fault.Errorf("inbox: fetch", fault.Unavailable, "NATS connection lost")
	}
	if s.env.Ready != nil {
		if ok, why := s.env.Ready(); !ok {
			return nil, fault.Errorf("inbox: fetch", fault.Unavailable, "%s", why)
		}
	}
	start := time.Now()
	batch, err := c.FetchNoWait(n)
	if err != nil {
		return nil, fault.E("inbox: fetch", fault.Unavailable, err)
	}
	msgs, late := receive(ctx, batch)
	if late {
		// Whatever still comes for this fetch would be leased to nobody.
		go func() {
			for m := range batch.Messages() {
				s.release([]jetstream.Msg{m})
			}
		}()
	}
	switch {
	case len(msgs) > 0:
		return msgs, nil
	case batch.Error() != nil:
		return nil, fault.E("inbox: fetch", fault.Unavailable, batch.Error())
	case ctx.Err() != nil:
		return nil, fault.E("inbox: fetch", fault.Unavailable, ctx.Err())
	case time.Since(start) >= noAnswer:
		return nil, fault.Errorf("inbox: fetch", fault.Unavailable, "JetStream did not answer within %v", time.Since(start).Round(time.Millisecond))
	}
	if ci := c.CachedInfo(); ci != nil && ci.Cluster != nil && len(ci.Cluster.Replicas) > 0 {
		// A replicated consumer's leader that lost its quorum answers "no
		// messages" although its queue holds some: ask it how it stands.
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fault.E("inbox: fetch", fault.Unavailable, err)
		}
		if err := health.Quorum("consumer "+info.Name, info.Cluster); err != nil {
			return nil, fault.E("inbox: fetch", fault.Unavailable, err)
		}
	}
	return nil, nil
}

// receive collects a no-wait fetch's messages, but gives up when ctx ends
// (http.store_timeout), saying so: messages that arrive later must be
// released.
func receive(ctx context.Context, batch jetstream.MessageBatch) (msgs []jetstream.Msg, late bool) {
	for {
		select {
		case m, ok := <-batch.Messages():
			if !ok {
				return msgs, false
			}
			msgs = append(msgs, m)
		case <-ctx.Done():
			return msgs, true
		}
	}
}
