package auditlog_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
)

// BenchmarkVerifyExport1M is `noticerelay audit verify --from DIR` over an
// export of 1,000,000 leaves (benchExport):
//
//	go test ./pkg/auditlog -run '^$' -bench VerifyExport1M -benchtime 3x
func BenchmarkVerifyExport1M(b *testing.B) {
	const n = 1_000_000
	e, v := benchExport(b, n)
	b.SetBytes(e.Size())
	b.ResetTimer()
	for b.Loop() {
		cps, err := e.Checkpoints()
		if err != nil {
			b.Fatal(err)
		}
		res, err := auditlog.Verify(b.Context(), e, cps, auditlog.VerifyOptions{Verifier: v, LeafHashes: e.LeafHashes()})
		if err != nil || res.Problem != nil || res.Leaves != n {
			b.Fatalf("%v %v", res.Verdict(), err)
		}
	}
}

// BenchmarkReportExport1M is `noticerelay audit report --from DIR` over the
// same export: verification and replay in one pass, and the HTML.
//
//	go test ./pkg/auditlog -run '^$' -bench ReportExport1M -benchtime 3x
func BenchmarkReportExport1M(b *testing.B) {
	const n = 1_000_000
	e, v := benchExport(b, n)
	b.SetBytes(e.Size())
	b.ResetTimer()
	for b.Loop() {
		cps, err := e.Checkpoints()
		if err != nil {
			b.Fatal(err)
		}
		rep, err := auditlog.BuildReport(b.Context(), e, cps, auditlog.ReportOptions{Now: time.Now(),
			Verify: auditlog.VerifyOptions{Verifier: v, LeafHashes: e.LeafHashes()},
			Replay: auditlog.ReplayOptions{At: time.Now(), UrgentDeadline: 15 * time.Minute}})
		if err != nil || rep.Verification.Problem != nil || rep.Replay.Leaves != n {
			b.Fatalf("%v", err)
		}
		if err := rep.WriteHTML(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// benchExport writes an export of n leaves (about 330 bytes each, as the
// relay writes them) with a checkpoint every 10,000 leaves.
func benchExport(b *testing.B, n int) (auditlog.Export, note.Verifier) {
	const every = 10_000
	skey, vkey := keys(b)
	s, _ := auditlog.NewSigner(skey)
	v, _ := auditlog.NewVerifier(vkey)
	dir := b.TempDir()
	w, err := auditlog.NewExportWriter(dir)
	if err != nil {
		b.Fatal(err)
	}
	tree := auditlog.NewCompactTree()
	var cps []auditlog.StoredCheckpoint
	var leaf []byte
	for i := range n {
		// Canonical JSON, members sorted, like a queued event.
		leaf = fmt.Appendf(leaf[:0], `{"actor":"routing","body_sha256":"%064x","delivery":"%032x","kind":"notice","notice":"%032x","platform":"examplenet","priority":"normal","recipient":"de-bka","time":"%s","type":"queued","v":"1"}`,
			i*7919, i, i/5, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))
		if err := w.Leaf(leaf); err != nil {
			b.Fatal(err)
		}
		tree.Append(leaf)
		if (i+1)%every == 0 {
			cp, err := auditlog.Sign(s, tree.Size(), tree.Root())
			if err != nil {
				b.Fatal(err)
			}
			cps = append(cps, auditlog.StoredCheckpoint{Seq: uint64(len(cps) + 1), Note: cp.Note})
		}
	}
	if err := w.Close(origin, cps, time.Now()); err != nil {
		b.Fatal(err)
	}
	return auditlog.Export{Dir: dir}, v
}
