package station

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	store "github.com/noticerelay/noticerelay/pkg/station"
)

// receive pulls from the relay until ctx ends: a full batch is followed
// at once by the next, an empty one by a pause, a failure by a growing one.
func (s *Station) receive(ctx context.Context) {
	var (
		down     bool      // the relay did not answer the last fetch
		problem  string    // the last round's trouble with deliveries
		recorded time.Time // when the relay's state was last written
	)
	wait := s.poll
	for ctx.Err() == nil {
		n, fetchErr, deliveryErr := s.round(ctx)
		if ctx.Err() != nil {
			return
		}
		if fetchErr == nil {
			s.fetchAttachments(ctx)
		}
		now := time.Now()
		switch {
		case fetchErr != nil:
			if !down {
				s.log.Warn("the relay is unreachable; serving what is stored", zap.Error(fetchErr))
			}
			if err := s.store.RelayFailed(ctx, now, fetchErr.Error()); err != nil {
				s.log.Error("recording the relay's state", zap.Error(err))
			}
			down = true
			wait = min(2*wait, 15*s.poll)
		default:
			p := ""
			if deliveryErr != nil {
				p = deliveryErr.Error()
				s.log.Error("deliveries not stored; the relay hands them out again", zap.Error(deliveryErr))
			}
			if down {
				s.log.Info("the relay is reachable again")
			}
			if down || p != problem || now.Sub(recorded) > 30*time.Second {
				if err := s.store.RelayReached(ctx, now, p); err != nil {
					s.log.Error("recording the relay's state", zap.Error(err))
				}
				recorded = now
			}
			down, problem, wait = false, p, s.poll
			if n > 0 && deliveryErr == nil {
				continue // more may be waiting
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// round fetches one batch, stores every delivery it can (each in its own
// transaction), then acknowledges exactly those stored, in one request.
// A delivery that cannot be opened or stored is not acknowledged: the
// relay hands it out again when its lease ends.
func (s *Station) round(ctx context.Context) (n int, fetchErr, deliveryErr error) {
	in, err := s.client.FetchInbox(ctx)
	if err != nil {
		return 0, err, nil
	}
	outs := in.Deliveries
	if a := in.Authority; a != nil && a.ID != "" {
		// The relay names the token's authority: the pages show it, and
		// a token of another authority than the database's stores nothing.
		if err := s.store.SetAuthority(ctx, store.Authority{ID: a.ID, Name: a.Name, Country: a.Country}); err != nil {
			return 0, nil, err
		}
	}
	var done []string
	var errs []error
	// Storing finishes even when the station is stopping: a half-written
	// delivery is rolled back anyway, a finished one is worth keeping.
	sctx := context.WithoutCancel(ctx)
	for _, o := range outs {
		r, err := s.open(o)
		if err == nil {
			var stored bool
			stored, err = s.store.Store(sctx, r, time.Now())
			if err == nil && stored {
				s.log.Info("delivery stored", zap.String("delivery", o.ID), zap.String("type", o.Type), zap.String("priority", o.Priority))
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, o.ID)
	}
	if len(done) > 0 {
		if err := s.client.AckAll(ctx, done); err != nil {
			// Stored: a delivery handed out again is recognised by its id.
			errs = append(errs, err)
		}
	}
	return len(outs), nil, errors.Join(errs...)
}

// open returns a delivery's body in clear.
func (s *Station) open(o delivery.Out) (store.Received, error) {
	r := store.Received{ID: o.ID, NoticeID: o.NoticeID, Type: o.Type, Priority: o.Priority, Body: o.Notice}
	switch o.Type {
	case "message":
		r.Body = o.Message // a message delivery carries the message, not the notice
	case "attachment":
		r.Body = o.Attachment // the file's description; the file itself is downloaded after the round
	}
	if o.ID == "" || o.NoticeID == "" {
		return r, fmt.Errorf("a delivery without id or notice id")
	}
	if o.Ciphertext != "" {
		if len(s.cfg.identities) == 0 {
			return r, fmt.Errorf("delivery %s is sealed and the station has no identity (set identity in its configuration)", o.ID)
		}
		body, err := delivery.Open(o.Ciphertext, s.cfg.identities...)
		if err != nil {
			return r, fmt.Errorf("delivery %s: %w", o.ID, err)
		}
		r.Body, r.Sealed = body, true
	}
	if len(r.Body) == 0 {
		r.Body = []byte("{}")
	}
	return r, nil
}
