package auditlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// RequestSubject is the NATS subject on which the audit service answers a
// request for a fresh checkpoint with the latest signed checkpoint.
const RequestSubject = "nr.audit.checkpoint.request"

// RangeHeader carries, on each checkpoint message, the hashes of the
// compact range of the tree the checkpoint signs (EncodeRange), so that a
// restarted checkpointer resumes without re-reading the log.
const RangeHeader = "Nr-Audit-Range"

// GapError says that the stream skips sequence numbers: a leaf is missing.
type GapError struct {
	Index uint64 // the first missing leaf
	Next  uint64 // the stream sequence found instead of Index+1
}

func (e *GapError) Error() string {
	if e.Next == 0 {
		return fmt.Sprintf("leaf %d: missing (the stream ends before its last sequence number)", e.Index)
	}
	return fmt.Sprintf("leaf %d: missing (stream sequence %d is followed by %d)", e.Index, e.Index, e.Next)
}

// fetchBatch is how many messages a reader asks for at a time.
const fetchBatch = 2048

// Patience is how long a log read keeps retrying transient errors (no
// responders, timeouts, a consumer lost to a leader change) without
// reading anything before it gives up.
var Patience = 2 * time.Minute

// readerIdle is the inactive threshold of a reader's consumer: the server
// deletes a consumer left behind by a reader that died.
const readerIdle = 15 * time.Second

// ReadLeaves reads the log from leaf from (stream sequence from+1) up to
// leaf to (exclusive; 0 means up to the last event stored when the call
// starts), calling fn with each leaf's index and exact bytes, in order. It
// fails with a *GapError when a sequence number is missing. It returns the
// index of the next leaf to read.
func ReadLeaves(ctx context.Context, js jetstream.JetStream, from, to uint64, fn func(index uint64, data []byte) error) (uint64, error) {
	info, err := streamInfo(ctx, js, stream.Events)
	if err != nil {
		return from, fmt.Errorf("reading the log: %w", err)
	}
	last := info.State.LastSeq
	if to == 0 || to > last {
		to = last
	}
	if info.State.Msgs > 0 && info.State.FirstSeq > 1 && from+1 < info.State.FirstSeq {
		return from, &GapError{Index: from, Next: info.State.FirstSeq}
	}
	if from >= to {
		return from, nil
	}
	next, err := readSeqs(ctx, js, stream.Events, "", from+1, to, func(seq uint64, m jetstream.Msg) error {
		if seq != from+1 {
			return &GapError{Index: from, Next: seq}
		}
		if err := fn(from, m.Data()); err != nil {
			return err
		}
		from++
		return nil
	})
	if err != nil {
		return from, err
	}
	if next <= to {
		return from, &GapError{Index: from, Next: 0}
	}
	return from, nil
}

// streamInfo returns the state of stream name, retrying transient errors.
func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	err := retry(ctx, func() error {
		s, err := js.Stream(ctx, name)
		if err == nil {
			info, err = s.Info(ctx)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return info, nil
}

// retry calls f until it succeeds, fails for good (see fatal), or has
// failed for Patience, waiting a little longer after each failure.
func retry(ctx context.Context, f func() error) error {
	w := waiter{}
	for {
		err := f()
		if err == nil || fatal(ctx, err) {
			return err
		}
		if err := w.wait(ctx, err); err != nil {
			return err
		}
	}
}

// waiter spaces retries of transient errors: 50 ms doubling up to 2 s, for
// at most Patience since the last progress.
type waiter struct {
	since time.Time // first failure since the last progress
	delay time.Duration
}

// progress says that the read moved on.
func (w *waiter) progress() { w.since, w.delay = time.Time{}, 0 }

// wait waits before the next try after err, or returns err when it has
// been failing for Patience.
func (w *waiter) wait(ctx context.Context, err error) error {
	if w.since.IsZero() {
		w.since = time.Now()
	}
	if time.Since(w.since) > Patience {
		return fmt.Errorf("still failing after %s: %w", Patience, err)
	}
	w.delay = min(max(2*w.delay, 50*time.Millisecond), 2*time.Second)
	t := time.NewTimer(w.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fatal says whether err ends a read: the caller gave up, the connection
// is closed for good, or the stream does not exist. Anything else (no
// responders, timeouts, a consumer lost to a leader change) is transient
// on a cluster.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, context.Canceled)
}

// fetchWait bounds one fetch: the server answers at once when the
// messages are stored.
const fetchWait = 5 * time.Second

// seqReader reads one range of a stream through one consumer of its own
// (no acks, in memory, one replica), created again from the next sequence
// when it is lost, and deleted when the read ends.
type seqReader struct {
	js            jetstream.JetStream
	name, subject string
	cons          jetstream.Consumer
	dseq          uint64 // the consumer's last delivery sequence received
	pending       uint64 // messages the consumer has left to deliver
}

// open creates the reader's consumer, starting at sequence start.
func (r *seqReader) open(ctx context.Context, start uint64) error {
	r.close()
	cfg := jetstream.ConsumerConfig{
		Name:              "nr-read-" + nuid.Next(),
		Description:       "a log read (deleted when it ends)",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: readerIdle,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if r.subject != "" {
		cfg.FilterSubject = r.subject
	}
	cons, err := r.js.CreateConsumer(ctx, r.name, cfg)
	if err != nil {
		return err
	}
	r.cons, r.dseq, r.pending = cons, 0, cons.CachedInfo().NumPending
	return nil
}

// close deletes the consumer (the inactive threshold removes it should
// the server not answer now).
func (r *seqReader) close() {
	if r.cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.js.DeleteConsumer(ctx, r.name, r.cons.CachedInfo().Name)
	r.cons = nil
}

// readSeqs reads messages of name (filtered by subject when not empty) with
// stream sequences from start up to end inclusive, and returns the sequence
// after the last one read. One consumer serves the whole read; a fetch that
// fails (a leader change, no responders, a timeout) is tried again, on a
// consumer created again from the next sequence after a few failures or
// when a delivery went missing on the way (its delivery sequence skips).
// Messages are handed to fn in order, each once.
func readSeqs(ctx context.Context, js jetstream.JetStream, name, subject string, start, end uint64, fn func(seq uint64, m jetstream.Msg) error) (uint64, error) {
	r := &seqReader{js: js, name: name, subject: subject}
	defer r.close()
	next := start
	var w waiter
	failures := 0
	fail := func(err error) error {
		if fatal(ctx, err) {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if failures++; failures >= 3 {
			r.close() // start over on a fresh consumer
			failures = 0
		}
		if err := w.wait(ctx, err); err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		return nil
	}
	for next <= end {
		if err := ctx.Err(); err != nil {
			return next, err
		}
		if r.cons == nil {
			if err := r.open(ctx, next); err != nil {
				if err := fail(err); err != nil {
					return next, err
				}
				continue
			}
		}
		want := min(fetchBatch, end-next+1)
		if subject != "" {
			if r.pending == 0 {
				return next, nil // no more matches
			}
			want = min(fetchBatch, r.pending)
		}
		batch, err := r.cons.Fetch(int(want), jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			if err := fail(err); err != nil {
				return next, err
			}
			continue
		}
		got, lost := 0, false
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return next, fmt.Errorf("reading %s: %w", name, err)
			}
			if md.Sequence.Consumer != r.dseq+1 {
				// Deliveries were lost on the way (a fetch given up
				// while the server still sent): read them again.
				lost = true
				break
			}
			r.dseq, r.pending = md.Sequence.Consumer, md.NumPending
			seq := md.Sequence.Stream
			if seq < next {
				continue
			}
			got++
			if seq > end {
				return end + 1, nil
			}
			if err := fn(seq, m); err != nil {
				return next, err
			}
			next = seq + 1
		}
		if lost {
			r.close()
			continue
		}
		if got > 0 {
			w.progress()
			failures = 0
			continue
		}
		if berr := batch.Error(); berr != nil && !errors.Is(berr, jetstream.ErrNoMessages) {
			if err := fail(berr); err != nil {
				return next, err
			}
			continue
		}
		// None came in time, though some are due: a replica that lags or
		// a consumer lost to a leader change (try again), unless the
		// stream itself no longer holds the next sequence.
		err = fmt.Errorf("no message at sequence %d", next)
		if subject == "" {
			if s, serr := js.Stream(ctx, name); serr == nil {
				if _, gerr := s.GetMsg(ctx, next); errors.Is(gerr, jetstream.ErrMsgNotFound) {
					return next, nil
				}
			}
		}
		if err := fail(err); err != nil {
			return next, err
		}
	}
	return next, nil
}

// LeavesOf returns the indexes of the leaves whose stream subject names the
// notice pseudonym (every event of a notice is stored under
// nr.event.<pseudonym>.…), in order.
func LeavesOf(ctx context.Context, js jetstream.JetStream, pseudonym string) ([]uint64, error) {
	info, err := streamInfo(ctx, js, stream.Events)
	if err != nil {
		return nil, fmt.Errorf("finding leaves: %w", err)
	}
	if info.State.LastSeq == 0 {
		return nil, nil
	}
	var out []uint64
	_, err = readSeqs(ctx, js, stream.Events, stream.EventSubject(pseudonym, ">"), 1, info.State.LastSeq,
		func(seq uint64, _ jetstream.Msg) error {
			out = append(out, seq-1)
			return nil
		})
	return out, err
}

// StoredCheckpoint is a checkpoint message as stored in NR_CHECKPOINTS.
type StoredCheckpoint struct {
	Seq   uint64
	Note  []byte
	Range string // the RangeHeader, if any
}

// ReadCheckpoints reads every stored checkpoint, in order.
func ReadCheckpoints(ctx context.Context, js jetstream.JetStream) ([]StoredCheckpoint, error) {
	info, err := streamInfo(ctx, js, stream.Checkpoints)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	var out []StoredCheckpoint
	_, err = readSeqs(ctx, js, stream.Checkpoints, "", info.State.FirstSeq, info.State.LastSeq, func(seq uint64, m jetstream.Msg) error {
		out = append(out, StoredCheckpoint{Seq: seq, Note: m.Data(), Range: m.Headers().Get(RangeHeader)})
		return nil
	})
	return out, err
}

// LatestCheckpoint returns the last stored checkpoint, or nil when there is
// none.
func LatestCheckpoint(ctx context.Context, js jetstream.JetStream) (*StoredCheckpoint, error) {
	s, err := js.Stream(ctx, stream.Checkpoints)
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	m, err := stream.Get(ctx, s, stream.CheckpointSubject)
	if fault.Is(err, fault.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	return &StoredCheckpoint{Seq: m.Sequence, Note: m.Data, Range: m.Header.Get(RangeHeader)}, nil
}
