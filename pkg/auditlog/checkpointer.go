package auditlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/note"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/health"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Checkpointer signs checkpoints of the log and publishes them to
// NR_CHECKPOINTS. It keeps only the compact range of the tree, resumes from
// the range stored with the latest checkpoint, and publishes with the
// expected last sequence of the checkpoint stream: of several
// checkpointers (a restarted one, a second process), only one that has
// seen the latest checkpoint can add the next, and all of them compute the
// same tree, because the event stream's leader alone numbers the leaves.
type Checkpointer struct {
	js     jetstream.JetStream
	signer note.Signer
	verify note.Verifier
	log    *zap.Logger

	mu      sync.Mutex
	tree    *Tree
	last    *Checkpoint // latest checkpoint known to be stored
	lastSeq uint64      // its sequence in NR_CHECKPOINTS (0: none)
	read    uint64      // leaves read from the stream by this checkpointer
}

// NewCheckpointer returns a checkpointer that signs with the signed-note
// signing key skey (the contents of audit.signing_key).
func NewCheckpointer(js jetstream.JetStream, skey string, log *zap.Logger) (*Checkpointer, error) {
	s, err := NewSigner(skey)
	if err != nil {
		return nil, err
	}
	vkey, err := VerifierKey(skey)
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Checkpointer{js: js, signer: s, verify: v, log: log}, nil
}

// Read returns how many leaves this checkpointer has read from the stream.
func (c *Checkpointer) Read() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read
}

// Latest returns the latest checkpoint known to be stored, or nil.
func (c *Checkpointer) Latest() *Checkpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Resume loads the latest stored checkpoint. When it carries its compact
// range and the range gives its root, the tree resumes from there without
// reading the log; otherwise the tree is rebuilt from the first leaf and
// must give the stored checkpoint's root at its size.
func (c *Checkpointer) Resume(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resume(ctx)
}

func (c *Checkpointer) resume(ctx context.Context) error {
	sc, err := LatestCheckpoint(ctx, c.js)
	if err != nil {
		return err
	}
	c.tree, c.last, c.lastSeq = NewCompactTree(), nil, 0
	if sc == nil {
		return nil
	}
	c.lastSeq = sc.Seq
	cp, err := Open(sc.Note, c.verify)
	if err != nil {
		// Signed by another key (a key rotation): start over from the log,
		// and sign the next checkpoint with this key.
		c.log.Warn("audit: the latest checkpoint is not signed by this key; rebuilding the tree from the log",
			zap.Uint64("checkpoint_seq", sc.Seq), zap.Error(err))
		return nil
	}
	if hs, err := DecodeRange(sc.Range); err == nil {
		if t, err := RestoreCompactTree(cp.Size, hs); err == nil && sameRoot(t.Root(), cp.Root) {
			c.tree, c.last = t, cp
			return nil
		}
	}
	c.log.Warn("audit: the latest checkpoint has no usable compact range; rebuilding the tree from the log",
		zap.Uint64("size", cp.Size))
	if err := c.catchUp(ctx, cp.Size); err != nil {
		return err
	}
	if c.tree.Size() != cp.Size || !sameRoot(c.tree.Root(), cp.Root) {
		return fmt.Errorf("the log does not match its checkpoint of size %d (the tree has %d leaves)", cp.Size, c.tree.Size())
	}
	c.last = cp
	return nil
}

// catchUp appends the leaves stored after the tree's last, up to leaf to
// (exclusive; 0: all).
func (c *Checkpointer) catchUp(ctx context.Context, to uint64) error {
	_, err := ReadLeaves(ctx, c.js, c.tree.Size(), to, func(_ uint64, data []byte) error {
		c.tree.Append(data)
		c.read++
		return nil
	})
	return err
}

// Checkpoint reads the leaves stored since the last call and, when the
// log has grown past the latest checkpoint, signs and publishes a new one.
// It returns the latest checkpoint (nil while the log is empty).
func (c *Checkpointer) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tree == nil {
		if err := c.resume(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.catchUp(ctx, 0); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if c.tree.Size() == 0 || (c.last != nil && c.tree.Size() <= c.last.Size) {
			return c.last, nil
		}
		cp, err := Sign(c.signer, c.tree.Size(), c.tree.Root())
		if err != nil {
			return nil, err
		}
		seq, err := stream.Publish(ctx, c.js, stream.Message{
			Subject: stream.CheckpointSubject,
			ID:      "checkpoint-" + strconv.FormatUint(cp.Size, 10) + "-" + fmt.Sprintf("%x", cp.Root[:8]),
			Data:    cp.Note,
			Header: nats.Header{
				RangeHeader:                     []string{EncodeRange(c.tree.Range())},
				jetstream.ExpectedLastSeqHeader: []string{strconv.FormatUint(c.lastSeq, 10)},
			},
		})
		if err == nil {
			c.last, c.lastSeq = cp, seq
			return cp, nil
		}
		if attempt >= 5 || !(fault.Is(err, fault.Conflict) || fault.Is(err, fault.Exists)) {
			return nil, fmt.Errorf("publishing checkpoint of size %d: %w", cp.Size, err)
		}
		// Another checkpointer published first: take its checkpoint as the
		// latest, then publish ours only if it is still newer.
		if err := c.adoptLatest(ctx); err != nil {
			return nil, err
		}
	}
}

// adoptLatest takes the latest stored checkpoint as the one to follow.
func (c *Checkpointer) adoptLatest(ctx context.Context) error {
	sc, err := LatestCheckpoint(ctx, c.js)
	if err != nil || sc == nil {
		return fmt.Errorf("after a conflicting checkpoint: %v", err)
	}
	c.lastSeq = sc.Seq
	cp, err := Open(sc.Note, c.verify)
	if err != nil {
		c.last = nil
		return nil
	}
	if cp.Size == c.tree.Size() && !sameRoot(cp.Root, c.tree.Root()) {
		return fmt.Errorf("checkpoint %d (size %d) has another root than this tree: the log was altered", sc.Seq, cp.Size)
	}
	c.last = cp
	return nil
}

// runBudget bounds one round of Run.
const runBudget = 10 * time.Second

// Run checkpoints every interval until ctx is cancelled. A round reads for
// at most runBudget (a read retries transient errors meanwhile), so that a
// checkpoint request is not kept waiting long.
func (c *Checkpointer) Run(ctx context.Context, interval time.Duration) {
	Rounds(ctx, &health.Streak{Log: c.log, What: "audit: checkpoint"}, interval, runBudget, c.Read,
		func(ctx context.Context) error {
			_, err := c.Checkpoint(ctx)
			return err
		})
}

// Rounds runs round every interval until ctx is cancelled, each within
// budget; read says how many leaves have been read. A round that runs out
// of time having read more is no failure: the next goes on from where it
// stopped. Failures are logged as a streak.
func Rounds(ctx context.Context, failures *health.Streak, interval, budget time.Duration, read func() uint64,
	round func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, budget)
		before := read()
		err := round(rctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && read() > before {
			err = nil // a long read, going on in the next round
		}
		if err != nil && ctx.Err() == nil {
			failures.Fail(err)
		} else if err == nil {
			failures.OK()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
