// Package status keeps the projection of each notice's state, folded from
// the lifecycle events into a key-value bucket that survives restarts, and
// answers the platforms' GET /v1/notices/{id}.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/service"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services`.
const Name = "status"

const consumerName = "status"

// Service is the status service.
type Service struct {
	env     *service.Env
	kv      jetstream.KeyValue
	notices jetstream.Stream
	applied prometheus.Counter
	wg      sync.WaitGroup
}

// New returns the status service.
func New(env *service.Env) *Service {
	s := &Service{env: env, applied: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "noticerelay_status_events_applied_total",
		Help: "Lifecycle events folded into the status projection.",
	})}
	env.Metrics.MustRegister(s.applied)
	return s
}

// Start opens the bucket, starts the projection and registers the route.
func (s *Service) Start(ctx context.Context) error {
	var err error
	if s.kv, err = s.env.JS.KeyValue(ctx, stream.StatusBucket); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if s.notices, err = s.env.Stream(ctx, stream.Notices); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	cons, err := s.env.JS.CreateOrUpdateConsumer(ctx, stream.Events, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "folds lifecycle events into the status projection",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       10 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 8192,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("status: creating consumer: %w", err)
	}
	loop := &stream.Consumer{Name: consumerName, Consumer: cons, Max: 256, Log: s.env.Log, Handle: s.handle}
	ready := make(chan struct{})
	errc := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		errc <- loop.Run(ctx, ready)
	}()
	select {
	case <-ready:
	case err := <-errc:
		return err
	}
	s.env.Mux.HandleFunc("GET /v1/notices/{id}", s.get)
	return nil
}

// Wait blocks until the projection has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// handle folds a batch of events: one read and one conditional write per
// notice, all writes pipelined.
func (s *Service) handle(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	byNotice := map[string][]int{}
	var order []string
	evs := make([]*event.Event, len(msgs))
	for i, m := range msgs {
		e, err := event.Decode(m.Data())
		if err != nil {
			errs[i] = fault.E("status", fault.Poison, err)
			continue
		}
		if e.Type == event.Rejected {
			continue
		}
		evs[i] = e
		if _, ok := byNotice[e.NoticeID]; !ok {
			order = append(order, e.NoticeID)
		}
		byNotice[e.NoticeID] = append(byNotice[e.NoticeID], i)
	}
	pending := order
	for attempt := 0; len(pending) > 0 && attempt < 5; attempt++ {
		writes := make([]stream.Message, 0, len(pending))
		var ids []string
		for _, id := range pending {
			m, err := s.fold(ctx, id, byNotice[id], evs)
			if err != nil {
				for _, i := range byNotice[id] {
					errs[i] = err
				}
				continue
			}
			writes = append(writes, m)
			ids = append(ids, id)
		}
		pending = pending[:0:0]
		for j, err := range stream.PublishAll(ctx, s.env.JS, writes) {
			switch {
			case err == nil || fault.Is(err, fault.Exists):
				s.applied.Add(float64(len(byNotice[ids[j]])))
			case fault.Is(err, fault.Conflict):
				pending = append(pending, ids[j]) // another writer: fold again
			default:
				for _, i := range byNotice[ids[j]] {
					errs[i] = err
				}
			}
		}
	}
	for _, id := range pending {
		for _, i := range byNotice[id] {
			errs[i] = fault.Errorf("status", fault.Unavailable, "projection of %s kept changing", id)
		}
	}
	return errs
}

// fold reads the projection of notice id, applies the events and returns
// the conditional write of the result.
func (s *Service) fold(ctx context.Context, id string, idx []int, evs []*event.Event) (stream.Message, error) {
	var p Projection
	var rev uint64
	entry, err := s.kv.Get(ctx, id)
	switch {
	case err == nil:
		if err := json.Unmarshal(entry.Value(), &p); err != nil {
			return stream.Message{}, fault.E("status: decoding projection", fault.Internal, err)
		}
		rev = entry.Revision()
	case err == jetstream.ErrKeyNotFound:
	default:
		return stream.Message{}, fault.E("status: reading projection", fault.Unavailable, err)
	}
	for _, i := range idx {
		p.Apply(evs[i])
	}
	if p.Reference == "" {
		if m, err := stream.Get(ctx, s.notices, stream.NoticeSubject(id)); err == nil {
			if rec, _, err := notice.DecodeRecord(m.Data); err == nil {
				p.Reference = rec.Reference
			}
		}
	}
	data, err := json.Marshal(&p)
	if err != nil {
		return stream.Message{}, fault.E("status: encoding projection", fault.Internal, err)
	}
	h := nats.Header{}
	h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	return stream.Message{Subject: "$KV." + stream.StatusBucket + "." + id,
		ID: id + "@" + strconv.FormatUint(rev, 10), Data: data, Header: h}, nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.env.Auth.FromRequest(r, auth.Platform)
	if !ok {
		httpapi.Unauthorized(w)
		return
	}
	id := strings.ToLower(r.PathValue("id"))
	if !notice.ValidID(id) {
		httpapi.NotFound(w, "notice")
		return
	}
	p, err := s.projection(r.Context(), id)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if p == nil || p.Platform != caller.ID {
		httpapi.NotFound(w, "notice")
		return
	}
	httpapi.JSON(w, http.StatusOK, p.View())
}

// projection returns the state of notice id: the projection, or, for a
// notice stored a moment ago and not yet folded, its accepted state.
func (s *Service) projection(ctx context.Context, id string) (*Projection, error) {
	entry, err := s.kv.Get(ctx, id)
	if err == nil {
		var p Projection
		if err := json.Unmarshal(entry.Value(), &p); err != nil {
			return nil, fault.E("status: decoding projection", fault.Internal, err)
		}
		if p.ReceivedAt != "" {
			return &p, nil
		}
	} else if err != jetstream.ErrKeyNotFound {
		return nil, fault.E("status: reading projection", fault.Unavailable, err)
	}
	m, err := stream.Get(ctx, s.notices, stream.NoticeSubject(id))
	if fault.Is(err, fault.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, n, err := notice.DecodeRecord(m.Data)
	if err != nil {
		return nil, fault.E("status", fault.Internal, err)
	}
	return &Projection{ID: id, Platform: rec.Platform, Reference: rec.Reference, ReceivedAt: rec.ReceivedAt,
		Priority: string(n.Priority())}, nil
}
