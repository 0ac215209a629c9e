package stream

import (
	"context"
	"errors"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/fault"
)

// Message is one message to store, with the deterministic id that makes a
// retry after a crash a no-op.
type Message struct {
	Subject string
	ID      string
	Data    []byte
	Header  nats.Header
}

func (m Message) nats() *nats.Msg {
	h := nats.Header{}
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(jetstream.MsgIDHeader, m.ID)
	return &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// Publish stores m and waits until JetStream has it. A message whose subject
// already holds one (or whose id was seen in the duplicate window) gives a
// fault.Exists error: it was stored before.
func Publish(ctx context.Context, js jetstream.JetStream, m Message) (uint64, error) {
	ack, err := js.PublishMsg(ctx, m.nats())
	if err != nil {
		return 0, classify("publish "+m.Subject, err)
	}
	if ack.Duplicate {
		return ack.Sequence, fault.Errorf("publish "+m.Subject, fault.Exists, "duplicate message id %s", m.ID)
	}
	return ack.Sequence, nil
}

// PublishAll stores every message of ms, pipelined: all are sent before any
// acknowledgement is awaited, so that one round trip (and, with group
// commit, few fsyncs) serves the lot. Messages on one connection are stored
// in the order given. It returns one error per message (nil when stored,
// fault.Exists when stored before).
func PublishAll(ctx context.Context, js jetstream.JetStream, ms []Message) []error {
	errs := make([]error, len(ms))
	futures := make([]jetstream.PubAckFuture, len(ms))
	for i, m := range ms {
		f, err := js.PublishMsgAsync(m.nats())
		if err != nil {
			errs[i] = classify("publish "+m.Subject, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				errs[i] = fault.Errorf("publish "+ms[i].Subject, fault.Exists, "duplicate message id %s", ms[i].ID)
			}
		case err := <-f.Err():
			errs[i] = classify("publish "+ms[i].Subject, err)
		case <-ctx.Done():
			errs[i] = fault.E("publish "+ms[i].Subject, fault.Unavailable, ctx.Err())
		}
	}
	return errs
}

// FirstError returns the first error in errs that is not fault.Exists.
func FirstError(errs []error) error {
	for _, err := range errs {
		if err != nil && !fault.Is(err, fault.Exists) {
			return err
		}
	}
	return nil
}

// JetStream error codes the relay branches on.
const (
	codeStoreFailed      = 10077 // JSStreamStoreFailedF: limits reached among others
	codeWrongLastSeq     = 10071 // JSStreamWrongLastSequenceErrF
	codeNoMessageFound   = 10037
	perSubjectExceeded   = "maximum messages per subject exceeded"
	maxBytesExceeded     = "maximum bytes exceeded"
	maxMessagesExceeded  = "maximum messages exceeded"
	insufficientResource = "insufficient resources"
)

// classify gives a JetStream or NATS error its fault kind.
func classify(op string, err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch {
		case api.ErrorCode == codeStoreFailed && strings.Contains(api.Description, perSubjectExceeded):
			return fault.E(op, fault.Exists, err)
		case strings.Contains(api.Description, maxBytesExceeded),
			strings.Contains(api.Description, maxMessagesExceeded),
			strings.Contains(api.Description, insufficientResource):
			return fault.E(op, fault.Unavailable, err)
		case api.ErrorCode == codeWrongLastSeq:
			return fault.E(op, fault.Conflict, err)
		case api.ErrorCode == codeNoMessageFound:
			return fault.E(op, fault.NotFound, err)
		case api.Code == 503:
			return fault.E(op, fault.Unavailable, err)
		}
		return fault.E(op, fault.Internal, err)
	}
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrKeyNotFound):
		return fault.E(op, fault.NotFound, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs), errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fault.E(op, fault.Unavailable, err)
	}
	return fault.E(op, fault.Internal, err)
}

// Get returns the one message stored on subject in stream (direct get).
// A subject with no message gives fault.NotFound.
func Get(ctx context.Context, s jetstream.Stream, subject string) (*jetstream.RawStreamMsg, error) {
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, classify("get "+subject, err)
	}
	return m, nil
}
