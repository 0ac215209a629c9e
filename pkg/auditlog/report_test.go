package auditlog_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// The report holds only what the largest checkpoint signs, its numbers are
// the replay's, and a changed leaf turns it into a report of a broken log.
func TestReportOfTheSignedLog(t *testing.T) {
	js := startNATS(t)
	skey, vkey := keys(t)
	v, _ := auditlog.NewVerifier(vkey)
	cp, err := auditlog.NewCheckpointer(js, skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, 0, 10) // 5 urgent, 5 normal, all acknowledged by de-bka 16 s after acceptance
	extra := []event.Event{
		{Type: event.Rejected, Notice: "r1", Time: base, Actor: "intake", Platform: "examplenet", Reasons: []string{"invalid:category", "malformed"}},
		{Type: event.Rejected, Notice: "r2", Time: base, Actor: "intake", Platform: "examplenet", Reasons: []string{"malformed"}},
		// Urgent, queued to fr-police and never acknowledged: escalated,
		// and overdue at the report's end.
		{Type: event.Accepted, Notice: "n-esc", Time: base, Actor: "intake", Platform: "examplenet", Priority: "urgent", Category: "terrorism"},
		{Type: event.Queued, Notice: "n-esc", Time: base.Add(time.Second), Actor: "routing", Platform: "examplenet", Priority: "urgent",
			Recipient: "fr-police", Kind: event.KindNotice, Delivery: "d-esc"},
		{Type: event.Escalated, Notice: "n-esc", Time: base.Add(time.Hour), Actor: "escalation", Platform: "examplenet", Priority: "urgent",
			Recipient: "fr-police", Kind: event.KindNotice, Delivery: "d-esc"},
	}
	var ms []stream.Message
	for _, e := range extra {
		m, err := e.Message()
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if err := stream.FirstError(stream.Direct{JS: js}.PublishAll(ctxT(t), ms)); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Checkpoint(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 10, 12) // not signed: left out
	cps, err := auditlog.ReadCheckpoints(ctxT(t), js)
	if err != nil {
		t.Fatal(err)
	}
	build := func(l auditlog.Leaves) (*auditlog.Report, []byte) {
		rep, err := auditlog.BuildReport(ctxT(t), l, cps, auditlog.ReportOptions{Now: base.Add(2 * time.Hour),
			Verify: auditlog.VerifyOptions{Verifier: v},
			Replay: auditlog.ReplayOptions{At: base.Add(2 * time.Hour), UrgentDeadline: 15 * time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := rep.WriteHTML(&b); err != nil {
			t.Fatal(err)
		}
		return rep, b.Bytes()
	}
	rep, page := build(auditlog.StreamLeaves{JS: js})
	if rep.Verification.Problem != nil || rep.Verification.Covered != 55 || rep.Verification.Leaves != 65 {
		t.Fatalf("%s", rep.Verification.Verdict())
	}
	if err := os.WriteFile(filepath.Join(os.TempDir(), "report-unit.html"), page, 0o644); err != nil {
		t.Fatal(err)
	}
	one := func(key string) map[string]string {
		rows := relaytest.DataRows(page, key)
		if len(rows) != 1 {
			t.Fatalf("%d elements with data-%s", len(rows), key)
		}
		return rows[0]
	}
	if ver := one("intact"); ver["intact"] != "true" || ver["checkpoint-size"] != "55" {
		t.Errorf("verification %v", ver)
	}
	figures := map[string]string{}
	for _, f := range relaytest.DataRows(page, "figure") {
		figures[f["figure"]] = f["value"]
	}
	for _, c := range []struct{ key, want string }{
		{"accepted", "11"}, {"rejected", "2"}, {"withdrawn", "0"}, {"escalated", "1"}, {"overdue", "1"},
	} {
		if figures[c.key] != c.want || !bytes.Contains(page, []byte(`data-value="`+c.want+`">`+c.want+`<`)) {
			t.Errorf("figure %s is not %s: %v", c.key, c.want, figures)
		}
	}
	rows := map[string]map[string]string{}
	for _, r := range relaytest.DataRows(page, "authority") {
		rows[r["authority"]+"/"+r["priority"]] = r
	}
	de := rows["de-bka/urgent"]
	if de == nil || de["queued"] != "5" || de["acknowledged"] != "5" || de["to-acknowledged-median"] != "16.000" ||
		de["to-acknowledged-max"] != "16.000" || de["to-delivered-p90"] != "9.000" || de["escalated"] != "0" {
		t.Errorf("de-bka urgent: %v", de)
	}
	fr := rows["fr-police/urgent"]
	if fr == nil || fr["queued"] != "1" || fr["acknowledged"] != "0" || fr["escalated"] != "1" || fr["overdue"] != "1" {
		t.Errorf("fr-police urgent: %v", fr)
	}
	if all := rows["all/normal"]; all == nil || all["queued"] != "5" {
		t.Errorf("all normal: %v", all)
	}
	reasons := map[string]string{}
	for _, r := range relaytest.DataRows(page, "reason") {
		reasons[r["reason"]] = r["count"]
	}
	if reasons["malformed"] != "2" || reasons["invalid:category"] != "1" || len(reasons) != 2 {
		t.Errorf("rejections %v", reasons)
	}
	days := relaytest.DataRows(page, "day")
	cats := map[string]bool{}
	for _, d := range days {
		cats[d["category"]+"/"+d["priority"]] = true
	}
	if !cats["terrorism/urgent"] || !cats["unrecorded/normal"] || len(days) != 3 {
		t.Errorf("days %v", days)
	}
	for _, bad := range []string{"<script", "http://", "https://", "@import", "url("} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("the report holds %q: it must be self-contained", bad)
		}
	}
	if !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "<title id=\"to-ack-title\">") {
		t.Error("no chart")
	}

	// Broken: one flipped byte in an export's leaf.
	dir := t.TempDir()
	if _, err := auditlog.ExportStream(ctxT(t), js, dir, origin, nil); err != nil {
		t.Fatal(err)
	}
	ls := readLines(t, filepath.Join(dir, auditlog.LeavesFile))
	ls[20][len(ls[20])/2] ^= 0x01
	writeLines(t, filepath.Join(dir, auditlog.LeavesFile), ls)
	rep, page = build(auditlog.Export{Dir: dir})
	if rep.Verification.Problem == nil || one("intact")["intact"] != "false" || !bytes.Contains(page, []byte("did NOT verify")) {
		t.Errorf("a changed leaf: %s", rep.Verification.Verdict())
	}
	// Broken: a leaf that no longer reads as an event is the log's
	// problem at that leaf, not an error that leaves the auditor without
	// a report.
	ls = readLines(t, filepath.Join(dir, auditlog.LeavesFile))
	ls[30] = []byte("{\"type\":\"accepted\",\"time\":\"2026-12-00T00:00:00Z\"}\n")
	writeLines(t, filepath.Join(dir, auditlog.LeavesFile), ls)
	rep, page = build(auditlog.Export{Dir: dir})
	if p := rep.Verification.Problem; p == nil || p.Leaf != 20 && p.Leaf != 30 || one("intact")["intact"] != "false" {
		t.Errorf("a leaf that does not decode: %s", rep.Verification.Verdict())
	}
	ls[20][len(ls[20])/2] ^= 0x01 // leaf 20 as it was: leaf 30 is the first bad one
	writeLines(t, filepath.Join(dir, auditlog.LeavesFile), ls)
	rep, page = build(auditlog.Export{Dir: dir})
	if p := rep.Verification.Problem; p == nil || p.Leaf != 30 || !strings.Contains(p.Reason, "no longer reads as an event") ||
		one("intact")["intact"] != "false" {
		t.Errorf("a leaf that does not decode: %s", rep.Verification.Verdict())
	}
}
