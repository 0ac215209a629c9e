package auditlog_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
)

// Proofs from the tree verify with the library's verifiers, and the tree's
// roots at every size agree with a tree built only to that size.
func TestTreeProofs(t *testing.T) {
	var leaves [][]byte
	tree := auditlog.NewTree()
	var roots [][]byte
	for i := range 300 {
		l := make([]byte, 20+i%13)
		_, _ = rand.Read(l)
		leaves = append(leaves, l)
		tree.Append(l)
		roots = append(roots, tree.Root())
	}
	for size := uint64(1); size <= 300; size += 7 {
		root, err := tree.RootAt(size)
		if err != nil || !bytes.Equal(root, roots[size-1]) {
			t.Fatalf("root at %d: %v", size, err)
		}
		for i := uint64(0); i < size; i += 3 {
			p, err := tree.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := auditlog.VerifyInclusion(leaves[i], i, size, p, root); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, size, err)
			}
			if auditlog.VerifyInclusion(append([]byte{1}, leaves[i]...), i, size, p, root) == nil {
				t.Fatalf("a changed leaf %d verifies", i)
			}
		}
		for s1 := uint64(1); s1 <= size; s1 += 11 {
			p, err := tree.ConsistencyProof(s1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := auditlog.VerifyConsistency(s1, size, p, roots[s1-1], root); err != nil {
				t.Fatalf("consistency %d..%d: %v", s1, size, err)
			}
		}
	}
}

// A tlog-proof file verifies for its leaf against the signed checkpoint,
// and fails for another leaf or another key.
func TestProofFile(t *testing.T) {
	skey, vkey := keys(t)
	s, _ := auditlog.NewSigner(skey)
	v, _ := auditlog.NewVerifier(vkey)
	tree := auditlog.NewTree()
	for i := range 100 {
		tree.Append([]byte(fmt.Sprintf(`{"i":"%d"}`, i)))
	}
	cp, err := auditlog.Sign(s, 90, mustRoot(t, tree, 90))
	if err != nil {
		t.Fatal(err)
	}
	file, err := auditlog.ProofFile(tree, 42, cp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(file), "c2sp.org/tlog-proof@v1\nindex 42\n") {
		t.Fatalf("proof file:\n%s", file)
	}
	if i, got, err := auditlog.VerifyProofFile(file, []byte(`{"i":"42"}`), v); err != nil || i != 42 || got.Size != 90 {
		t.Fatalf("verify: %d %v %v", i, got, err)
	}
	if _, _, err := auditlog.VerifyProofFile(file, []byte(`{"i":"43"}`), v); err == nil {
		t.Fatal("another leaf verifies")
	}
	_, other := keys(t)
	ov, _ := auditlog.NewVerifier(other)
	if _, _, err := auditlog.VerifyProofFile(file, []byte(`{"i":"42"}`), ov); err == nil {
		t.Fatal("verifies with another key")
	}
	if _, err := tree.InclusionProof(95, 90); err == nil {
		t.Fatal("proof of a leaf beyond the size")
	}
}

func mustRoot(t *testing.T, tree *auditlog.Tree, size uint64) []byte {
	t.Helper()
	r, err := tree.RootAt(size)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verifyDir verifies an export folder.
func verifyDir(t *testing.T, dir string, v note.Verifier) *auditlog.Result {
	t.Helper()
	e := auditlog.Export{Dir: dir}
	cps, err := e.Checkpoints()
	if err != nil {
		t.Fatal(err)
	}
	res, err := auditlog.Verify(ctxT(t), e, cps, auditlog.VerifyOptions{Verifier: v, LeafHashes: e.LeafHashes()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Verify passes on a log of thousands of events, from NATS and from an
// export; any single change to an export makes it fail and name where.
func TestVerifyNamesTheBrokenIndex(t *testing.T) {
	js := startNATS(t)
	skey, vkey := keys(t)
	v, _ := auditlog.NewVerifier(vkey)
	cp, err := auditlog.NewCheckpointer(js, skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 800; n += 100 { // 4000 leaves, a checkpoint every 500
		publish(t, js, n, n+100)
		if _, err := cp.Checkpoint(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := auditlog.ReadCheckpoints(ctxT(t), js)
	if err != nil || len(cps) != 8 {
		t.Fatalf("%d checkpoints, %v", len(cps), err)
	}
	res, err := auditlog.Verify(ctxT(t), auditlog.StreamLeaves{JS: js}, cps, auditlog.VerifyOptions{Verifier: v})
	if err != nil || res.Problem != nil || res.Leaves != 4000 || res.Covered != 4000 {
		t.Fatalf("from NATS: %v %v", res.Verdict(), err)
	}
	dir := t.TempDir()
	if n, err := auditlog.ExportStream(ctxT(t), js, dir, origin, nil); err != nil || n != 4000 {
		t.Fatalf("export: %d %v", n, err)
	}
	if res := verifyDir(t, dir, v); res.Problem != nil || res.Leaves != 4000 {
		t.Fatalf("export: %s", res.Verdict())
	}

	leaves := filepath.Join("", auditlog.LeavesFile)
	cases := []struct {
		name   string
		change func(dir string)
		leaf   int64
		cp     int
	}{
		{"flip a byte", func(dir string) {
			ls := readLines(t, filepath.Join(dir, leaves))
			ls[1234][len(ls[1234])/2] ^= 0x01
			writeLines(t, filepath.Join(dir, leaves), ls)
		}, 1234, -1},
		{"flip a byte of the first leaf", func(dir string) {
			ls := readLines(t, filepath.Join(dir, leaves))
			ls[0][3] ^= 0x20
			writeLines(t, filepath.Join(dir, leaves), ls)
		}, 0, -1},
		{"delete a leaf", func(dir string) {
			ls := readLines(t, filepath.Join(dir, leaves))
			writeLines(t, filepath.Join(dir, leaves), append(ls[:777:777], ls[778:]...))
		}, 777, -1},
		{"swap two leaves", func(dir string) {
			ls := readLines(t, filepath.Join(dir, leaves))
			ls[100], ls[2500] = ls[2500], ls[100]
			writeLines(t, filepath.Join(dir, leaves), ls)
		}, 100, -1},
		{"truncate the tail", func(dir string) {
			ls := readLines(t, filepath.Join(dir, leaves))
			writeLines(t, filepath.Join(dir, leaves), ls[:3900])
		}, 3900, -1},
		{"insert a leaf", func(dir string) {
			ls := readLines(t, filepath.Join(dir, leaves))
			ls = append(ls[:2001], ls[2000:]...)
			writeLines(t, filepath.Join(dir, leaves), ls)
		}, 2001, -1},
		{"checkpoint signed by another key", func(dir string) {
			other, _ := keys(t)
			s, _ := auditlog.NewSigner(other)
			c, _ := auditlog.Open(cps[3].Note, v)
			forged, err := auditlog.Sign(s, c.Size, c.Root)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, auditlog.CheckpointsFile)
			ls := readLines(t, path)
			line, _ := json.Marshal(map[string]string{"seq": "4", "note": string(forged.Note)})
			ls[3] = append(line, '\n')
			writeLines(t, path, ls)
		}, -1, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := copyDir(t, dir)
			c.change(d)
			res := verifyDir(t, d, v)
			if res.Problem == nil {
				t.Fatalf("still intact: %s", res.Verdict())
			}
			if res.Problem.Leaf != c.leaf || res.Problem.Checkpoint != c.cp {
				t.Fatalf("want leaf %d checkpoint %d, got %s", c.leaf, c.cp, res.Verdict())
			}
			t.Log(res.Verdict())
		})
	}
	// Without the leaf hashes, a change is still found, within the range
	// between two checkpoints.
	d := copyDir(t, dir)
	os.Remove(filepath.Join(d, auditlog.LeafHashesFile))
	cases[0].change(d)
	if res := verifyDir(t, d, v); res.Problem == nil || res.Problem.Leaf != 1000 {
		t.Fatalf("without leaf hashes: %s", res.Verdict())
	}
}

// A checkpointer that crashes and restarts resumes from the compact range
// stored with its last checkpoint, and no number of checkpointers racing
// (restarted, stale or concurrent) forks the tree.
func TestCheckpointerRestartsWithoutForking(t *testing.T) {
	js := startNATS(t)
	skey, vkey := keys(t)
	v, _ := auditlog.NewVerifier(vkey)
	newCP := func() *auditlog.Checkpointer {
		c, err := auditlog.NewCheckpointer(js, skey, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Resume(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := newCP()
	publish(t, js, 0, 200)
	if c, err := a.Checkpoint(ctxT(t)); err != nil || c.Size != 1000 {
		t.Fatalf("%v %v", c, err)
	}
	// a "crashes": it is simply never used again, holding stale state.
	publish(t, js, 200, 300)
	b := newCP()
	if b.Read() != 0 || b.Latest().Size != 1000 {
		t.Fatalf("resumed after reading %d leaves, at %v", b.Read(), b.Latest())
	}
	if c, err := b.Checkpoint(ctxT(t)); err != nil || c.Size != 1500 || b.Read() != 500 {
		t.Fatalf("%v %v, read %d", c, err, b.Read())
	}
	// b and a third checkpointer race while the log grows.
	c := newCP()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, cp := range []*auditlog.Checkpointer{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := cp.Checkpoint(ctxT(t)); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for n := 300; n < 600; n += 20 {
		publish(t, js, n, n+20)
	}
	close(stop)
	wg.Wait()
	// The stale one wakes up: it must not publish a forked or older tree.
	if got, err := a.Checkpoint(ctxT(t)); err != nil || got.Size != 3000 {
		t.Fatalf("stale checkpointer: %v %v", got, err)
	}
	cps, err := auditlog.ReadCheckpoints(ctxT(t), js)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for k, sc := range cps {
		cp, err := auditlog.Open(sc.Note, v)
		if err != nil || cp.Size <= last {
			t.Fatalf("checkpoint %d: size %v after %d: %v", k, cp, last, err)
		}
		last = cp.Size
	}
	res, err := auditlog.Verify(ctxT(t), auditlog.StreamLeaves{JS: js}, cps, auditlog.VerifyOptions{Verifier: v})
	if err != nil || res.Problem != nil || res.Covered != 3000 {
		t.Fatalf("%v %v", res.Verdict(), err)
	}
	t.Logf("%d checkpoints; %s", len(cps), res.Verdict())
}

// Replay rebuilds the times from acceptance per authority and priority, as
// of a moment, and names the notices whose bodies expired.
func TestReplay(t *testing.T) {
	js := startNATS(t)
	publish(t, js, 0, 10) // notice n accepted at base+n min; queued +4s, delivered +9s, acked +16s
	ctx := ctxT(t)
	rep, err := auditlog.RunReplay(ctx, auditlog.StreamLeaves{JS: js}, auditlog.ReplayOptions{
		At: base.Add(time.Hour), Retention: 50 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 10 || rep.Leaves != 50 {
		t.Fatalf("%+v", rep)
	}
	var row *auditlog.Row
	for i := range rep.Rows {
		if rep.Rows[i].Authority == "de-bka" && rep.Rows[i].Priority == "urgent" {
			row = &rep.Rows[i]
		}
	}
	if row == nil || row.Queued != 5 || row.Acknowledged != 5 || row.ToQueued.Median != 4 || row.ToDelivered.P95 != 9 || row.ToAcknowledged.Median != 16 {
		t.Fatalf("row %+v", row)
	}
	// Accepted more than 50 minutes before base+1h: notices 0 to 9 are all
	// (accepted at base+0..9 min).
	if len(rep.Expired) != 10 {
		t.Fatalf("expired %v", rep.Expired)
	}
	// As of 10 s after notice 0's acceptance: it is queued and delivered,
	// not yet acknowledged; no other notice exists yet.
	rep, err = auditlog.RunReplay(ctx, auditlog.StreamLeaves{JS: js}, auditlog.ReplayOptions{At: base.Add(10 * time.Second), Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 1 || len(rep.Expired) != 0 {
		t.Fatalf("%+v", rep)
	}
	for _, r := range rep.Rows {
		if r.Queued != 1 || r.Delivered != 1 || r.Acknowledged != 0 {
			t.Fatalf("row %+v", r)
		}
	}
	var csv, text bytes.Buffer
	if err := rep.WriteCSV(&csv); err != nil || !strings.HasPrefix(csv.String(), "authority,priority,queued") {
		t.Fatalf("%v\n%s", err, csv.String())
	}
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "de-bka") {
		t.Fatalf("%v\n%s", err, text.String())
	}
}
