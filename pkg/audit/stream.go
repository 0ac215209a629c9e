package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

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

// ReadLeaves reads the log from leaf from (stream sequence from+1) up to
// leaf to (exclusive; 0 means up to the last event stored when the call
// starts), calling fn with each leaf's index and exact bytes, in order. It
// fails with a *GapError when a sequence number is missing. It returns the
// index of the next leaf to read.
func ReadLeaves(ctx context.Context, js jetstream.JetStream, from, to uint64, fn func(index uint64, data []byte) error) (uint64, error) {
	s, err := js.Stream(ctx, stream.Events)
	if err != nil {
		return from, fmt.Errorf("reading the log: %w", err)
	}
	info, err := s.Info(ctx)
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

// readSeqs reads messages of name (filtered by subject when not empty) with
// stream sequences from start up to end inclusive, through an ordered
// consumer, and returns the sequence after the last one read.
func readSeqs(ctx context.Context, js jetstream.JetStream, name, subject string, start, end uint64, fn func(seq uint64, m jetstream.Msg) error) (uint64, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	cons, err := js.OrderedConsumer(ctx, name, cfg)
	if err != nil {
		return start, fmt.Errorf("reading %s: %w", name, err)
	}
	next := start
	for next <= end {
		if err := ctx.Err(); err != nil {
			return next, err
		}
		batch, err := cons.FetchNoWait(fetchBatch)
		if err != nil {
			return next, fmt.Errorf("reading %s: %w", name, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return next, fmt.Errorf("reading %s: %w", name, err)
			}
			seq := md.Sequence.Stream
			if seq > end {
				return end + 1, nil
			}
			if err := fn(seq, m); err != nil {
				return next, err
			}
			next = seq + 1
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return next, fmt.Errorf("reading %s: %w", name, err)
		}
		if got == 0 {
			// Nothing more is stored (for a filter: no more matches).
			return next, nil
		}
	}
	return next, nil
}

// LeavesOf returns the indexes of the leaves whose stream subject names the
// notice pseudonym (every event of a notice is stored under
// nr.event.<pseudonym>.…), in order.
func LeavesOf(ctx context.Context, js jetstream.JetStream, pseudonym string) ([]uint64, error) {
	s, err := js.Stream(ctx, stream.Events)
	if err != nil {
		return nil, fmt.Errorf("finding leaves: %w", err)
	}
	info, err := s.Info(ctx)
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
	s, err := js.Stream(ctx, stream.Checkpoints)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	info, err := s.Info(ctx)
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
