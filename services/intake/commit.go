package intake

import (
	"context"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Group commit: concurrent submissions are gathered into one atomic batch,
// so that the server fsyncs once for all of them; each request is answered
// only after its batch is stored. A committer takes whatever is waiting (up
// to maxGroup) as soon as it is free, so a lone request is not delayed and
// a burst fills the batches.
const (
	maxGroup   = 256
	committers = 1
)

type commitRequest struct {
	msg  stream.Message
	done chan error
}

// commit stores m through the group committer and waits for the outcome.
func (s *Service) commit(ctx context.Context, m stream.Message) error {
	req := &commitRequest{msg: m, done: make(chan error, 1)}
	select {
	case s.queue <- req:
	case <-ctx.Done():
		return fault.E("intake: commit", fault.Unavailable, ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The batch may still be stored; the platform's retry gets 200.
		return fault.E("intake: commit", fault.Unavailable, ctx.Err())
	}
}

// committer stores batches until ctx ends.
func (s *Service) committer(ctx context.Context) {
	batch := make([]*commitRequest, 0, maxGroup)
	msgs := make([]stream.Message, 0, maxGroup)
	for {
		select {
		case <-ctx.Done():
			return
		case first := <-s.queue:
			batch = append(batch[:0], first)
		gather:
			for len(batch) < maxGroup {
				select {
				case r := <-s.queue:
					batch = append(batch, r)
				default:
					break gather
				}
			}
			msgs = msgs[:0]
			for _, r := range batch {
				msgs = append(msgs, r.msg)
			}
			for i, err := range stream.PublishAll(context.WithoutCancel(ctx), s.env.JS, msgs) {
				batch[i].done <- err
			}
			s.batchSize.Observe(float64(len(batch)))
		}
	}
}
