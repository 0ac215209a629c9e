// Package auditlog is the relay's tamper-evident log: an RFC 6962 Merkle tree
// whose leaf i is, byte for byte, message i+1 of the lifecycle event stream
// (NR_EVENTS); C2SP signed-note checkpoints of that tree; inclusion and
// consistency proofs; C2SP tlog-proof files; and the offline verification,
// export and replay that auditors run. Hashing, proofs and signatures come
// from github.com/transparency-dev/merkle, github.com/transparency-dev/formats
// and golang.org/x/mod/sumdb/note; this package only decides what the leaves
// are and where they are kept. docs/audit.md explains the design.
package auditlog

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// HashSize is the size of every hash in the tree.
const HashSize = 32

// hasher is the RFC 6962 SHA-256 tree hasher.
var hasher = rfc6962.DefaultHasher

var factory = &compact.RangeFactory{Hash: hasher.HashChildren}

// LeafHash returns the RFC 6962 hash of a leaf's bytes.
func LeafHash(leaf []byte) []byte { return hasher.HashLeaf(leaf) }

// Tree is the Merkle tree over the leaves appended so far. It always keeps
// the compact range (enough for the root); a tree made by NewTree also
// keeps every perfect node (64 bytes per leaf), enough for roots at any
// earlier size, proofs and the leaf hashes.
type Tree struct {
	rng   *compact.Range
	nodes [][]byte // nodes[level]: hashes of the level's perfect nodes, left to right; nil for a compact tree
	keep  bool
}

// NewTree returns an empty tree that keeps every node.
func NewTree() *Tree {
	return &Tree{rng: factory.NewEmptyRange(0), keep: true}
}

// NewCompactTree returns an empty tree that keeps only its compact range.
func NewCompactTree() *Tree {
	return &Tree{rng: factory.NewEmptyRange(0)}
}

// RestoreCompactTree rebuilds a compact tree of size leaves from the hashes
// of its compact range (as stored with a checkpoint, see EncodeRange).
func RestoreCompactTree(size uint64, hashes [][]byte) (*Tree, error) {
	rng, err := factory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("restoring compact range of size %d: %w", size, err)
	}
	return &Tree{rng: rng}, nil
}

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return t.rng.End() }

// Append adds a leaf.
func (t *Tree) Append(leaf []byte) { t.AppendHash(hasher.HashLeaf(leaf)) }

// AppendHash adds a leaf by its leaf hash.
func (t *Tree) AppendHash(h []byte) {
	var visit compact.VisitFn
	if t.keep {
		visit = t.store
	}
	// Append fails only on a corrupted range, which this type never builds.
	if err := t.rng.Append(h, visit); err != nil {
		panic(fmt.Sprintf("audit: appending to compact range: %v", err))
	}
}

func (t *Tree) store(id compact.NodeID, h []byte) {
	for int(id.Level) >= len(t.nodes) {
		t.nodes = append(t.nodes, nil)
	}
	t.nodes[id.Level] = append(t.nodes[id.Level], h...)
}

// node returns a stored perfect node, or nil.
func (t *Tree) node(id compact.NodeID) []byte {
	if int(id.Level) >= len(t.nodes) {
		return nil
	}
	l := t.nodes[id.Level]
	off := id.Index * HashSize
	if off+HashSize > uint64(len(l)) {
		return nil
	}
	return l[off : off+HashSize : off+HashSize]
}

// LeafHashAt returns the hash of leaf i (trees made by NewTree only).
func (t *Tree) LeafHashAt(i uint64) []byte { return t.node(compact.NewNodeID(0, i)) }

// Root is the root hash of the whole tree.
func (t *Tree) Root() []byte {
	if t.Size() == 0 {
		return hasher.EmptyRoot()
	}
	root, err := t.rng.GetRootHash(nil)
	if err != nil {
		panic(fmt.Sprintf("audit: root of compact range: %v", err))
	}
	return root
}

// Range returns the hashes of the compact range, left to right.
func (t *Tree) Range() [][]byte { return t.rng.Hashes() }

// hashes looks up the stored hashes of ids.
func (t *Tree) hashes(ids []compact.NodeID) ([][]byte, error) {
	if !t.keep {
		return nil, fmt.Errorf("a compact tree keeps no nodes")
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h := t.node(id)
		if h == nil {
			return nil, fmt.Errorf("node (level %d, index %d) is not in a tree of size %d", id.Level, id.Index, t.Size())
		}
		out[i] = append([]byte(nil), h...)
	}
	return out, nil
}

// RootAt is the root hash of the tree's first size leaves.
func (t *Tree) RootAt(size uint64) ([]byte, error) {
	if size > t.Size() {
		return nil, fmt.Errorf("size %d is beyond the tree's %d leaves", size, t.Size())
	}
	if size == t.Size() {
		return t.Root(), nil
	}
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	hs, err := t.hashes(compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, err
	}
	rng, err := factory.NewRange(0, size, hs)
	if err != nil {
		return nil, err
	}
	return rng.GetRootHash(nil)
}

// InclusionProof proves leaf index in the tree of the first size leaves.
func (t *Tree) InclusionProof(index, size uint64) ([][]byte, error) {
	n, err := proof.Inclusion(index, size)
	return t.proof(n, err, size)
}

// ConsistencyProof proves that the tree of size2 leaves extends the tree of
// size1 leaves.
func (t *Tree) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	n, err := proof.Consistency(size1, size2)
	return t.proof(n, err, size2)
}

// proof fills in the hashes of the nodes a proof of the tree of size leaves
// needs.
func (t *Tree) proof(n proof.Nodes, err error, size uint64) ([][]byte, error) {
	if size > t.Size() {
		return nil, fmt.Errorf("size %d is beyond the tree's %d leaves", size, t.Size())
	}
	if err != nil {
		return nil, err
	}
	hs, err := t.hashes(n.IDs)
	if err != nil {
		return nil, err
	}
	return n.Rehash(hs, hasher.HashChildren)
}

// VerifyInclusion checks an inclusion proof of leaf (its bytes) at index
// against root with the library's verifier.
func VerifyInclusion(leaf []byte, index, size uint64, p [][]byte, root []byte) error {
	return proof.VerifyInclusion(hasher, index, size, hasher.HashLeaf(leaf), p, root)
}

// VerifyConsistency checks a consistency proof with the library's verifier.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	return proof.VerifyConsistency(hasher, size1, size2, p, root1, root2)
}

// EncodeRange encodes compact range hashes for storage with a checkpoint.
func EncodeRange(hashes [][]byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Join(hashes, nil))
}

// DecodeRange decodes EncodeRange's output.
func DecodeRange(s string) ([][]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%HashSize != 0 {
		return nil, fmt.Errorf("compact range: not base64 of %d-byte hashes", HashSize)
	}
	out := make([][]byte, 0, len(b)/HashSize)
	for i := 0; i < len(b); i += HashSize {
		out = append(out, b[i:i+HashSize:i+HashSize])
	}
	return out, nil
}
