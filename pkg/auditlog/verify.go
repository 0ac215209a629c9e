package auditlog

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"
)

// Leaves is where a verification reads the log from: the event stream
// (StreamLeaves) or an export (Export.Leaves).
type Leaves interface {
	// Each calls fn with every leaf's index and exact bytes, in order. The
	// bytes are valid only during the call. A missing leaf is a *GapError.
	Each(ctx context.Context, fn func(index uint64, data []byte) error) error
}

// VerifyOptions say what to verify against.
type VerifyOptions struct {
	// Verifier is the configured verifier key of the log's checkpoints.
	Verifier note.Verifier
	// LeafHashes, when not nil, are leaf hashes exported with the leaves
	// (32 bytes each). They are not trusted: when a checkpoint's root does
	// not match the leaves, and these hashes do give that signed root, the
	// first leaf whose hash differs is the one that was changed.
	LeafHashes []byte
	// Progress, when not nil, is called now and then with the number of
	// leaves verified so far.
	Progress func(leaves uint64)
	// Signed, when not nil, is called in the same pass with each leaf that
	// the largest checkpoint signs, in order, before it is checked; it is
	// how a report reads the log it verifies without reading it twice. An
	// error from it (a leaf that does not decode) is the log's Problem at
	// that leaf.
	Signed func(index uint64, data []byte) error
}

// Problem is the first thing found wrong with a log.
type Problem struct {
	// Leaf is the index of the first bad leaf, or -1 when the problem is a
	// checkpoint's.
	Leaf int64
	// Checkpoint is the position (from 0, in publication order) of the
	// checkpoint concerned, or -1.
	Checkpoint int
	Reason     string
}

func (p *Problem) String() string {
	if p.Leaf >= 0 {
		return fmt.Sprintf("leaf %d: %s", p.Leaf, p.Reason)
	}
	return fmt.Sprintf("checkpoint %d: %s", p.Checkpoint, p.Reason)
}

// Result is the outcome of a verification.
type Result struct {
	Origin      string
	Leaves      uint64
	Checkpoints int
	// Covered is the size of the largest checkpoint.
	Covered uint64
	// Largest is the checkpoint of size Covered; nil when there is none.
	Largest *Checkpoint
	// Root is the root hash of all the leaves read.
	Root []byte
	// Problem is nil when the log is intact.
	Problem *Problem
}

// Verdict is the one line that says whether the log is intact.
func (r *Result) Verdict() string {
	if r.Problem != nil {
		return "audit log BROKEN at " + r.Problem.String()
	}
	s := fmt.Sprintf("audit log intact: %d leaves, %d checkpoints signed by %s verified; the latest signs %d leaves",
		r.Leaves, r.Checkpoints, r.Origin, r.Covered)
	if r.Covered < r.Leaves {
		s += fmt.Sprintf(" (%d newer leaves not signed yet)", r.Leaves-r.Covered)
	}
	return s + "; root " + base64.StdEncoding.EncodeToString(r.Root)
}

// Verify replays the log: it checks every checkpoint's signature against
// the configured verifier key, recomputes the tree from the leaves (exact
// bytes, never re-serialised), compares each checkpoint's root with the
// root of the leaves it signs, checks the consistency proof between each
// checkpoint and the next with the library's verifier, and that no leaf is
// missing. It returns an error only when it could not finish reading; a
// log that is not intact gives a Result with a Problem.
func Verify(ctx context.Context, leaves Leaves, checkpoints []StoredCheckpoint, o VerifyOptions) (*Result, error) {
	res := &Result{Origin: o.Verifier.Name(), Checkpoints: len(checkpoints), Root: hasher.EmptyRoot()}
	cps := make([]*Checkpoint, len(checkpoints))
	for k, sc := range checkpoints {
		cp, err := Open(sc.Note, o.Verifier)
		if err != nil {
			res.Problem = &Problem{Leaf: -1, Checkpoint: k,
				Reason: fmt.Sprintf("(stream sequence %d) does not verify with the configured key %s: %v", sc.Seq, o.Verifier.Name(), err)}
			return res, nil
		}
		cps[k] = cp
		if res.Largest == nil || cp.Size > res.Covered {
			res.Covered, res.Largest = cp.Size, cp
		}
	}
	// Checkpoints by size: each size's root must be the same, and each is
	// compared with the tree when the tree reaches that size.
	bySize := map[uint64]int{}
	var sizes []uint64
	for k, cp := range cps {
		if j, ok := bySize[cp.Size]; ok {
			if !sameRoot(cps[j].Root, cp.Root) {
				res.Problem = &Problem{Leaf: -1, Checkpoint: k,
					Reason: fmt.Sprintf("signs another root for size %d than checkpoint %d: the log forked", cp.Size, j)}
				return res, nil
			}
			continue
		}
		bySize[cp.Size] = k
		sizes = append(sizes, cp.Size)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })

	tree := NewTree()
	next, verified := 0, uint64(0) // next size to check; largest size checked
	for next < len(sizes) && sizes[next] == 0 {
		next++
	}
	var bad *Problem
	errStop := errors.New("stop")
	err := leaves.Each(ctx, func(index uint64, data []byte) error {
		if o.Signed != nil && index < res.Covered {
			if err := o.Signed(index, data); err != nil {
				// The relay writes only events that decode: a leaf that
				// does not was changed after it was written.
				bad = &Problem{Leaf: int64(index), Checkpoint: -1, Reason: "changed: " + err.Error()}
				return errStop
			}
		}
		tree.Append(data)
		size := tree.Size()
		if o.Progress != nil && size%(1<<16) == 0 {
			o.Progress(size)
		}
		if next < len(sizes) && sizes[next] == size {
			k := bySize[size]
			if !sameRoot(tree.Root(), cps[k].Root) {
				bad = locate(tree, cps[k], k, verified, o.LeafHashes)
				return errStop
			}
			verified = size
			next++
		}
		return nil
	})
	res.Leaves = tree.Size()
	res.Root = tree.Root()
	var gap *GapError
	switch {
	case errors.Is(err, errStop):
		res.Problem = bad
		return res, nil
	case errors.As(err, &gap):
		res.Problem = &Problem{Leaf: int64(gap.Index), Checkpoint: -1, Reason: "missing: " + gap.Error()}
		return res, nil
	case err != nil:
		return nil, err
	}
	if o.Progress != nil {
		o.Progress(tree.Size())
	}
	if next < len(sizes) {
		k := bySize[sizes[next]]
		res.Problem = &Problem{Leaf: int64(tree.Size()), Checkpoint: -1,
			Reason: fmt.Sprintf("missing: checkpoint %d signs %d leaves but the log ends after %d (its tail was cut off)",
				k, sizes[next], tree.Size())}
		return res, nil
	}
	// Successive checkpoints: each extends the one before.
	for k := 1; k < len(cps); k++ {
		a, b := cps[k-1], cps[k]
		if b.Size < a.Size {
			res.Problem = &Problem{Leaf: -1, Checkpoint: k,
				Reason: fmt.Sprintf("signs %d leaves, fewer than the %d of the checkpoint before it: the log went back", b.Size, a.Size)}
			return res, nil
		}
		p, err := tree.ConsistencyProof(a.Size, b.Size)
		if err == nil {
			err = VerifyConsistency(a.Size, b.Size, p, a.Root, b.Root)
		}
		if err != nil {
			res.Problem = &Problem{Leaf: -1, Checkpoint: k,
				Reason: fmt.Sprintf("is not consistent with checkpoint %d: %v", k-1, err)}
			return res, nil
		}
	}
	return res, nil
}

// locate names the first bad leaf below checkpoint k, whose root does not
// match the tree. Leaves before good (the largest size already verified)
// are known to be right.
func locate(tree *Tree, cp *Checkpoint, k int, good uint64, leafHashes []byte) *Problem {
	if uint64(len(leafHashes)) >= cp.Size*HashSize {
		ref := NewCompactTree()
		for i := uint64(0); i < cp.Size; i++ {
			ref.AppendHash(leafHashes[i*HashSize : (i+1)*HashSize])
		}
		if sameRoot(ref.Root(), cp.Root) {
			for i := good; i < cp.Size; i++ {
				if !bytes.Equal(tree.LeafHashAt(i), leafHashes[i*HashSize:(i+1)*HashSize]) {
					return &Problem{Leaf: int64(i), Checkpoint: -1, Reason: fmt.Sprintf(
						"is not the leaf that checkpoint %d (size %d) signs: it was altered, or leaves were removed, added or reordered here", k, cp.Size)}
				}
			}
		}
	}
	return &Problem{Leaf: int64(good), Checkpoint: -1, Reason: fmt.Sprintf(
		"checkpoint %d (size %d) does not match leaves %d to %d: one of them was altered, removed, added or reordered",
		k, cp.Size, good, cp.Size-1)}
}

// StreamLeaves reads the leaves from the event stream of a running relay.
type StreamLeaves struct {
	JS jetstream.JetStream
}

// Each implements Leaves.
func (s StreamLeaves) Each(ctx context.Context, fn func(index uint64, data []byte) error) error {
	_, err := ReadLeaves(ctx, s.JS, 0, 0, fn)
	return err
}
