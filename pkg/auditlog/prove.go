package auditlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	tlogproof "github.com/transparency-dev/formats/proof"
	"golang.org/x/mod/sumdb/note"
)

// ProofFile returns the C2SP tlog-proof (https://c2sp.org/tlog-proof) of
// leaf index against the signed checkpoint cp. tree must hold at least
// cp.Size leaves and keep its nodes (NewTree).
func ProofFile(tree *Tree, index uint64, cp *Checkpoint) ([]byte, error) {
	if index >= cp.Size {
		return nil, fmt.Errorf("leaf %d is not in the checkpoint of size %d", index, cp.Size)
	}
	hs, err := tree.InclusionProof(index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of leaf %d: %w", index, err)
	}
	p := tlogproof.TLogProof{Index: index, Checkpoint: cp.Note}
	for _, h := range hs {
		p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
	}
	return p.Marshal(), nil
}

// VerifyProofFile checks a tlog-proof for the leaf's exact bytes: the
// checkpoint must be signed by v, and the inclusion proof must lead from
// the leaf to the checkpoint's root. It returns the leaf's index and the
// checkpoint.
func VerifyProofFile(file, leaf []byte, v note.Verifier) (uint64, *Checkpoint, error) {
	var p tlogproof.TLogProof
	if err := p.Unmarshal(file); err != nil {
		return 0, nil, fmt.Errorf("not a tlog-proof: %w", err)
	}
	cp, err := Open(p.Checkpoint, v)
	if err != nil {
		return p.Index, nil, fmt.Errorf("checkpoint: %w", err)
	}
	hs := make([][]byte, len(p.Hashes))
	for i := range p.Hashes {
		hs[i] = p.Hashes[i][:]
	}
	if err := VerifyInclusion(leaf, p.Index, cp.Size, hs, cp.Root); err != nil {
		return p.Index, cp, fmt.Errorf("leaf %d is not in the log of size %d: %w", p.Index, cp.Size, err)
	}
	return p.Index, cp, nil
}

// NoticeLeaves reads every leaf into a tree and returns it with the leaves
// (index and bytes) of the notice whose pseudonym is given.
func NoticeLeaves(ctx context.Context, leaves Leaves, pseudonym string, progress func(uint64)) (*Tree, map[uint64][]byte, error) {
	tree := NewTree()
	found := map[uint64][]byte{}
	// Leaves are canonical JSON: the member is written exactly so.
	needle := []byte(`"notice":"` + pseudonym + `"`)
	err := leaves.Each(ctx, func(i uint64, data []byte) error {
		tree.Append(data)
		if bytes.Contains(data, needle) {
			found[i] = append([]byte(nil), data...)
		}
		if progress != nil && (i+1)%(1<<16) == 0 {
			progress(i + 1)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return tree, found, nil
}

// Proof file names written by WriteProofs.
const (
	proofSuffix = ".tlog-proof"
	leafSuffix  = ".json"
)

// WriteProofs writes, for each leaf, dir/leaf-<index>.tlog-proof and the
// leaf's exact bytes as dir/leaf-<index>.json, and returns the proof files.
func WriteProofs(dir string, tree *Tree, leaves map[uint64][]byte, cp *Checkpoint) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	idx := make([]uint64, 0, len(leaves))
	for i := range leaves {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var out []string
	for _, i := range idx {
		p, err := ProofFile(tree, i, cp)
		if err != nil {
			return out, err
		}
		base := filepath.Join(dir, "leaf-"+strconv.FormatUint(i, 10))
		if err := os.WriteFile(base+proofSuffix, p, 0o644); err != nil {
			return out, err
		}
		if err := os.WriteFile(base+leafSuffix, leaves[i], 0o644); err != nil {
			return out, err
		}
		out = append(out, base+proofSuffix)
	}
	return out, nil
}

// LeafFileOf is the leaf file that WriteProofs writes next to a proof file.
func LeafFileOf(proofFile string) string {
	return strings.TrimSuffix(proofFile, proofSuffix) + leafSuffix
}
