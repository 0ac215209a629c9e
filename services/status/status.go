// Package status keeps the projection of each notice's state, folded from
// the lifecycle events into a key-value bucket that survives restarts, and
// answers the platforms' GET /v1/notices/{id}.
package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/share"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services`.
const Name = "status"

// Service is the status service.
type Service struct {
	env     *module.Env
	kv      jetstream.KeyValue
	notices jetstream.Stream
	applied prometheus.Counter
	wg      sync.WaitGroup
}

// New returns the status service.
func New(env *module.Env) *Service {
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
	events := stream.Durable(stream.StatusConsumer, "folds lifecycle events into the status projection")
	bodies := stream.Durable(stream.StatusBodiesConsumer, "records each notice's id and reference in the status projection",
		stream.NoticeSubject("*"))
	for _, c := range []*stream.Consumer{
		{Name: stream.StatusConsumer, Stream: stream.Events, Config: events, Handle: s.handleEvents},
		{Name: stream.StatusBodiesConsumer, Stream: stream.Notices, Config: bodies, Handle: s.handleBodies},
	} {
		c.Config.MaxAckPending = 8192
		c.Max, c.Workers, c.Log, c.JS, c.PoisonAttempts = 512, 2, s.env.Log, s.env.JS, s.env.Config.Deliveries.PoisonAttempts
		if err := c.Start(ctx, &s.wg); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	}
	s.env.Mux.HandleFunc("GET /v1/notices/{id}", s.get)
	return nil
}

// Wait blocks until the projection has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// change is what a batch does to one notice's projection.
type change struct {
	key   string // the notice's pseudonym
	msgs  []int  // the batch's messages that cause it
	apply []func(*Projection)
}

// changes groups a batch's updates by notice, in first-seen order.
type changes struct {
	byKey map[string]*change
	order []*change
}

func (cs *changes) add(key string, msg int, f func(*Projection)) {
	if cs.byKey == nil {
		cs.byKey = map[string]*change{}
	}
	c, ok := cs.byKey[key]
	if !ok {
		c = &change{key: key}
		cs.byKey[key] = c
		cs.order = append(cs.order, c)
	}
	c.msgs = append(c.msgs, msg)
	c.apply = append(c.apply, f)
}

// handleEvents folds a batch of lifecycle events.
func (s *Service) handleEvents(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	var cs changes
	for i, m := range msgs {
		e, err := event.Decode(m.Data())
		if err != nil {
			errs[i] = fault.E("status", fault.Poison, err)
			continue
		}
		if e.Type == event.Rejected {
			continue
		}
		cs.add(e.Notice, i, func(p *Projection) { p.Apply(e) })
	}
	s.commit(ctx, cs.order, errs)
	return errs
}

// handleBodies records what only the stored body knows: the notice id and
// the platform's reference (lifecycle events name notices by pseudonym).
func (s *Service) handleBodies(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	var cs changes
	for i, m := range msgs {
		rec, n, err := notice.DecodeRecord(m.Data())
		if err != nil {
			errs[i] = fault.E("status", fault.Poison, err)
			continue
		}
		cs.add(s.env.Pseudonyms.Notice(rec.ID), i, func(p *Projection) { p.Stored(rec, n) })
		if earlier := superseding(rec); earlier != "" {
			cs.add(s.env.Pseudonyms.Notice(earlier), i, func(p *Projection) { p.supersededBy(rec) })
		}
	}
	s.commit(ctx, cs.order, errs)
	return errs
}

// commit applies each change to its projection: one read and one
// conditional write per notice, the writes pipelined. A write that loses a
// race with another writer (a second relay's status service, or this one's
// other worker) is folded again at once, logged at debug only.
func (s *Service) commit(ctx context.Context, pending []*change, errs []error) {
	fail := func(c *change, err error) {
		for _, i := range c.msgs {
			errs[i] = err
		}
	}
	for attempt := 0; len(pending) > 0 && attempt < 5; attempt++ {
		if attempt > 0 {
			// Another status process (or worker) wrote one of these
			// projections since it was read: fold it again at once.
			s.env.Log.Debug("status: folding again after a conflicting write",
				zap.Int("notices", len(pending)), zap.Int("attempt", attempt+1))
		}
		writes := make([]stream.Message, 0, len(pending))
		var written []*change
		for _, c := range pending {
			m, err := s.fold(ctx, c)
			if err != nil {
				fail(c, err)
				continue
			}
			writes = append(writes, m)
			written = append(written, c)
		}
		pending = nil
		for j, err := range s.env.Publisher.PublishAll(ctx, writes) {
			switch {
			case !stream.Failed(err):
				s.applied.Add(float64(len(written[j].msgs)))
			case fault.Is(err, fault.Conflict):
				pending = append(pending, written[j])
			default:
				fail(written[j], err)
			}
		}
	}
	for _, c := range pending {
		fail(c, fault.Errorf("status", fault.Unavailable, "projection %s kept changing", c.key))
	}
}

// fold reads a projection, applies the change and returns the conditional
// write of the result.
func (s *Service) fold(ctx context.Context, c *change) (stream.Message, error) {
	var p Projection
	var rev uint64
	entry, err := s.kv.Get(ctx, c.key)
	switch err = stream.Classify("status: reading projection", err); {
	case err == nil:
		if err := json.Unmarshal(entry.Value(), &p); err != nil {
			// Never readable: dead-lettered, not retried forever.
			return stream.Message{}, fault.E("status: decoding projection "+c.key, fault.Poison, err)
		}
		rev = entry.Revision()
	case !fault.Is(err, fault.NotFound):
		return stream.Message{}, err
	}
	for _, f := range c.apply {
		f(&p)
	}
	data, err := json.Marshal(&p)
	if err != nil {
		return stream.Message{}, fault.E("status: encoding projection", fault.Internal, err)
	}
	h := nats.Header{}
	h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	return stream.Message{Subject: stream.StatusKeySubject(c.key),
		ID: projectionWriteID(c.key, rev, data), Data: data, Header: h}, nil
}

// projectionWriteID names a conditional write by key, base revision and
// content: a retry of the same write is a duplicate, while a competing
// write from the same base (another status process) is not mistaken for
// one — it fails the revision check and is folded again.
func projectionWriteID(key string, rev uint64, data []byte) string {
	sum := sha256.Sum256(data)
	return key + "@" + strconv.FormatUint(rev, 10) + "@" + hex.EncodeToString(sum[:8])
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.env.Auth.FromRequest(r, auth.Platform)
	if !ok {
		if s.env.Auth.Known(r) {
			// Contract: any caller other than the submitting platform gets 404.
			httpapi.NotFound(w, "notice")
			return
		}
		httpapi.Unauthorized(w)
		return
	}
	release, ok := s.env.Shares.Admit(w, caller.ID, share.Normal)
	if !ok {
		return
	}
	defer release()
	id := strings.ToLower(r.PathValue("id"))
	if !notice.ValidID(id) {
		httpapi.NotFound(w, "notice")
		return
	}
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	p, err := s.projection(ctx, id)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if p == nil || p.Platform != caller.ID {
		httpapi.NotFound(w, "notice")
		return
	}
	p.ID = id
	httpapi.JSON(w, http.StatusOK, p.View())
}

// projection returns the state of notice id: the projection, or, for a
// notice stored a moment ago and not yet folded, its state from the body.
func (s *Service) projection(ctx context.Context, id string) (*Projection, error) {
	var p Projection
	entry, err := s.kv.Get(ctx, s.env.Pseudonyms.Notice(id))
	switch err = stream.Classify("status: reading projection", err); {
	case err == nil:
		if err := json.Unmarshal(entry.Value(), &p); err != nil {
			return nil, fault.E("status: decoding projection", fault.Internal, err)
		}
		if p.Reference != "" {
			return &p, nil
		}
	case !fault.Is(err, fault.NotFound):
		return nil, err
	}
	m, err := stream.Get(ctx, s.notices, stream.NoticeSubject(id))
	if fault.Is(err, fault.NotFound) {
		if p.Platform == "" {
			return nil, nil
		}
		return &p, nil
	}
	if err != nil {
		return nil, err
	}
	rec, n, err := notice.DecodeRecord(m.Data)
	if err != nil {
		return nil, fault.E("status", fault.Internal, err)
	}
	p.Stored(rec, n)
	return &p, nil
}
