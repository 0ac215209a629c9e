package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/fault"
)

// Dead is the dead-letter stream: a copy of every message that was given
// up on (a poison message past its attempts, a webhook delivery past its
// retry budget), with why, so that nothing is redelivered forever and
// nothing is lost. It holds personal data (retention-limited) and is
// encrypted at rest like every stream; deliveries sealed to an authority
// stay sealed in it.
const Dead = "NR_DEAD"

const deadPrefix = "nr.dead."

// Headers of a dead letter.
const (
	HeaderDeadReason   = "Nr-Dead-Reason"
	HeaderDeadConsumer = "Nr-Dead-Consumer"
	HeaderDeadStream   = "Nr-Dead-Stream"
	HeaderDeadSubject  = "Nr-Dead-Subject"
	HeaderDeadSequence = "Nr-Dead-Sequence"
	HeaderDeadAttempts = "Nr-Dead-Attempts"
	HeaderDeadAt       = "Nr-Dead-At"
)

// DeadSubject is the subject of the dead letter of the message at seq in
// stream, given up on by consumer: one per (message, consumer), so
// dead-lettering twice after a crash stores it once.
func DeadSubject(stream, consumer string, seq uint64) string {
	return deadPrefix + stream + "." + consumer + "." + strconv.FormatUint(seq, 10)
}

// DeadFilter matches every dead letter.
const DeadFilter = deadPrefix + ">"

// deadLetters is the configuration of the dead-letter stream.
func (t Topology) deadLetters() jetstream.StreamConfig {
	c := t.unique(Dead, "dead letters: messages given up on, with the reason (personal data, retention-limited)",
		[]string{deadPrefix + "*.*.*"}, 8<<20)
	c.MaxAge = t.Retention
	c.AllowAtomicPublish = false
	return c
}

// DeadLetter stores a copy of m, with reason and the number of attempts
// made on it, in the dead-letter stream. It is idempotent (fault.Exists
// when stored before counts as success).
func DeadLetter(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, consumer, reason string, attempts uint64) error {
	md, err := m.Metadata()
	if err != nil {
		return fault.E("dead letter", fault.Internal, err)
	}
	h := nats.Header{}
	for k, v := range m.Headers() {
		if k != jetstream.MsgIDHeader && !strings.HasPrefix(k, "Nats-") {
			h[k] = v
		}
	}
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	h.Set(HeaderDeadReason, reason)
	h.Set(HeaderDeadConsumer, consumer)
	h.Set(HeaderDeadStream, md.Stream)
	h.Set(HeaderDeadSubject, m.Subject())
	h.Set(HeaderDeadSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	h.Set(HeaderDeadAttempts, strconv.FormatUint(attempts, 10))
	h.Set(HeaderDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	subj := DeadSubject(md.Stream, consumer, md.Sequence.Stream)
	if _, err = Publish(ctx, js, Message{Subject: subj, ID: subj, Data: m.Data(), Header: h}); Failed(err) {
		return err
	}
	return nil
}

// Poisoned settles a message that cannot be processed: it is tried again
// (with backoff) until it has been delivered attempts times, then copied
// to the dead-letter stream and terminated. It reports whether the
// message was dead-lettered. If the copy cannot be stored the message is
// tried again later: never lost, never redelivered forever.
func Poisoned(ctx context.Context, js jetstream.JetStream, log *zap.Logger, m jetstream.Msg, consumer string, attempts int, cause error) bool {
	n := uint64(1)
	if md, err := m.Metadata(); err == nil {
		n = md.NumDelivered
	}
	if attempts <= 0 {
		attempts = 5
	}
	if n < uint64(attempts) {
		log.Warn("consume: message cannot be processed; will try again", zap.String("consumer", consumer),
			zap.String("subject", m.Subject()), zap.Uint64("delivered", n), zap.Error(cause))
		_ = m.NakWithDelay(Backoff(n))
		return false
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := DeadLetter(dctx, js, m, consumer, cause.Error(), n); err != nil {
		log.Error("consume: storing dead letter failed; will try again", zap.String("consumer", consumer),
			zap.String("subject", m.Subject()), zap.Error(err))
		_ = m.NakWithDelay(Backoff(n))
		return false
	}
	log.Error("consume: message dead-lettered", zap.String("consumer", consumer),
		zap.String("subject", m.Subject()), zap.Uint64("delivered", n), zap.Error(cause))
	_ = m.TermWithReason(cause.Error())
	return true
}

// Later is an error that asks the consume loop to deliver the message
// again after a given delay, without counting it as a failure: a timer
// kept in the consumer's state, so it survives restarts.
type Later struct {
	After time.Duration
}

func (l *Later) Error() string { return fmt.Sprintf("not yet: again in %v", l.After) }

// IsLater reports whether err asks for a delayed redelivery, and after how
// long.
func IsLater(err error) (time.Duration, bool) {
	var l *Later
	if errors.As(err, &l) {
		return l.After, true
	}
	return 0, false
}
