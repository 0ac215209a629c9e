package station

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/inboxclient"
	"github.com/noticerelay/noticerelay/pkg/message"
	store "github.com/noticerelay/noticerelay/pkg/station"
)

// Outcomes of sending one message.
const (
	outcomeSent    = "sent"
	outcomePending = "pending" // the relay could not be reached or answered 5xx: tried again later
	outcomeRefused = "refused" // the relay refused it for good
)

// sendLoop sends the messages the analysts wrote, until ctx ends. Each is
// stored (pending) before anything is sent, and sent under its own id as
// Idempotency-Key: a message sent twice (the page's attempt and this loop
// crossing, or a crash between the relay's 201 and the station's record of
// it) is stored by the relay once. While the relay cannot be reached the
// loop backs off, and it tries every pending message again afterwards.
func (s *Station) sendLoop(ctx context.Context) {
	wait := s.poll
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		pending, err := s.store.PendingMessages(ctx, "", 100)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("reading pending messages", zap.Error(err))
			}
			continue
		}
		wait = s.poll
		for _, o := range pending {
			if outcome, _ := s.send(ctx, o); outcome == outcomePending {
				wait = min(2*wait, 15*s.poll) // the relay is away: the rest would fail too
				break
			}
		}
	}
}

// sendNow sends the pending message id at once (the page's attempt) and
// reports what became of it.
func (s *Station) sendNow(ctx context.Context, id string) (string, error) {
	pending, err := s.store.PendingMessages(ctx, id, 1)
	if err != nil {
		return outcomePending, err
	}
	if len(pending) == 0 {
		return outcomeSent, nil // the sender was quicker
	}
	return s.send(ctx, pending[0])
}

// send sends one pending message and records the outcome.
func (s *Station) send(ctx context.Context, o store.Outgoing) (string, error) {
	if o.DeliveryID == "" {
		err := fmt.Errorf("message %s: no delivery of its notice is stored", o.ID)
		return outcomePending, errors.Join(err, s.store.MessageFailed(ctx, o.ID, err.Error()))
	}
	sent, err := s.client.SendMessage(ctx, o.DeliveryID, o.ID, message.AuthorityRequest{Kind: o.Kind, Text: o.Text, InReplyTo: o.InReplyTo})
	// The outcome is recorded even when the station is stopping: the
	// relay has answered, and its answer is worth keeping.
	rctx := context.WithoutCancel(ctx)
	var se *inboxclient.StatusError
	switch {
	case err == nil:
		s.log.Info("message sent", zap.String("message", o.ID), zap.String("relay_id", sent.ID), zap.String("kind", o.Kind))
		return outcomeSent, s.store.MessageSent(rctx, o.ID, sent.ID, sent.SentAt, time.Now())
	case errors.As(err, &se) && se.Permanent():
		s.log.Warn("message refused by the relay", zap.String("message", o.ID), zap.Int("status", se.Status))
		return outcomeRefused, errors.Join(err, s.store.MessageRefused(rctx, o.ID, reason(se), time.Now()))
	default:
		if ctx.Err() == nil {
			s.log.Warn("message not sent yet; it stays pending", zap.String("message", o.ID), zap.Error(err))
		}
		return outcomePending, errors.Join(err, s.store.MessageFailed(rctx, o.ID, err.Error()))
	}
}

// reason is a refusal as the thread shows it: the relay's status and
// problem, cut short.
func reason(se *inboxclient.StatusError) string {
	body := se.Body
	if r := []rune(body); len(r) > 500 {
		body = string(r[:500]) + "…"
	}
	return fmt.Sprintf("HTTP %d: %s", se.Status, body)
}
