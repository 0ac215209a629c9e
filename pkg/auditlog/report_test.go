package auditlog_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
		// One platform's window of five rejected submissions, as intake
		// records it.
		{Type: event.Rejected, Notice: "r3", Time: base, Actor: "intake", Platform: "othernet", Count: 5,
			Reasons: []string{"body_too_large", "malformed"}, ReasonCounts: map[string]int{"malformed": 3, "body_too_large": 2}},
		// Urgent, acknowledged by at-police 20 minutes after it was queued:
		// late, not overdue.
		{Type: event.Accepted, Notice: "n-late", Time: base, Actor: "intake", Platform: "examplenet", Priority: "urgent", Category: "terrorism"},
		{Type: event.Queued, Notice: "n-late", Time: base.Add(time.Second), Actor: "routing", Platform: "examplenet", Priority: "urgent",
			Recipient: "at-police", Kind: event.KindNotice, Delivery: "d-late"},
		{Type: event.Acknowledged, Notice: "n-late", Time: base.Add(20*time.Minute + time.Second), Actor: "inbox", Platform: "examplenet",
			Priority: "urgent", Recipient: "at-police", Kind: event.KindNotice, Delivery: "d-late"},
		// Its two-way channel: at-police asks, the platform reads and
		// answers, at-police acknowledges the answer; a file reaches
		// at-police; later notices follow up and supersede n-esc.
		{Type: event.MessageSent, Notice: "n-late", Time: base.Add(time.Hour), Actor: "messages", Platform: "examplenet", Recipient: "platform",
			Sender: "at-police", Kind: event.KindMessage, Delivery: "d-m1", MessageID: "m1", MessageKind: "request_information"},
		{Type: event.MessageDelivered, Notice: "n-late", Time: base.Add(time.Hour), Actor: "messages", Platform: "examplenet", Recipient: "platform",
			Sender: "at-police", Kind: event.KindMessage, Delivery: "d-m1", MessageID: "m1", MessageKind: "request_information"},
		{Type: event.MessageSent, Notice: "n-late", Time: base.Add(time.Hour), Actor: "messages", Platform: "examplenet", Recipient: "at-police",
			Sender: "platform", Kind: event.KindMessage, Delivery: "d-m2", MessageID: "m2", MessageKind: "response"},
		{Type: event.Acknowledged, Notice: "n-late", Time: base.Add(time.Hour), Actor: "inbox", Platform: "examplenet", Recipient: "at-police",
			Kind: event.KindMessage, Delivery: "d-m2", MessageID: "m2", MessageKind: "response"},
		{Type: event.AttachmentAdded, Notice: "n-late", Time: base.Add(time.Hour), Actor: "attachments", Platform: "examplenet", Attachment: "a1"},
		{Type: event.Queued, Notice: "n-late", Time: base.Add(time.Hour), Actor: "attachments", Platform: "examplenet", Recipient: "at-police",
			Kind: event.KindAttachment, Delivery: "d-a1", Attachment: "a1"},
		{Type: event.AttachmentDelivered, Notice: "n-late", Time: base.Add(time.Hour), Actor: "inbox", Platform: "examplenet", Recipient: "at-police",
			Kind: event.KindAttachment, Delivery: "d-a1", Attachment: "a1"},
		{Type: event.Acknowledged, Notice: "n-late", Time: base.Add(time.Hour), Actor: "inbox", Platform: "examplenet", Recipient: "at-police",
			Kind: event.KindAttachment, Delivery: "d-a1", Attachment: "a1"},
		// Normal, pushed to nl-police's webhook until its budget ran out;
		// and the platform's answer to at-police's message likewise.
		{Type: event.Accepted, Notice: "n-dead", Time: base, Actor: "intake", Platform: "examplenet", Priority: "normal"},
		{Type: event.Queued, Notice: "n-dead", Time: base.Add(time.Second), Actor: "routing", Platform: "examplenet", Priority: "normal",
			Recipient: "nl-police", Kind: event.KindNotice, Delivery: "d-dead"},
		{Type: event.DeadLettered, Notice: "n-dead", Time: base.Add(time.Hour), Actor: "push", Platform: "examplenet", Priority: "normal",
			Recipient: "nl-police", Kind: event.KindNotice, Delivery: "d-dead"},
		{Type: event.DeadLettered, Notice: "n-late", Time: base.Add(time.Hour), Actor: "push", Platform: "examplenet", Recipient: "at-police",
			Kind: event.KindMessage, Delivery: "d-m2", MessageID: "m2", MessageKind: "response"},
		{Type: event.FollowedUp, Notice: "n-esc", Time: base.Add(time.Hour), Actor: "routing", Platform: "examplenet", By: "n-fu"},
		{Type: event.Superseded, Notice: "n-esc", Time: base.Add(time.Hour), Actor: "routing", Platform: "examplenet", By: "n-fix"},
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
	if rep.Verification.Problem != nil || rep.Verification.Covered != 73 || rep.Verification.Leaves != 83 {
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
	if ver := one("intact"); ver["intact"] != "true" || ver["checkpoint-size"] != "73" {
		t.Errorf("verification %v", ver)
	}
	figures := relaytest.DataMap(page, "figure", "value")
	for _, c := range []struct{ key, want string }{
		{"accepted", "13"}, {"rejected", "7"}, {"withdrawn", "0"}, {"escalated", "1"}, {"late", "1"}, {"overdue", "1"},
		{"dead-lettered", "2"}, {"messages", "2"}, {"attachments", "1"},
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
	if at := rows["at-police/urgent"]; at == nil || at["acknowledged"] != "1" || at["late"] != "1" || at["overdue"] != "0" {
		t.Errorf("at-police urgent: %v", at)
	}
	if all := rows["all/urgent"]; all == nil || all["late"] != "1" || all["overdue"] != "1" || all["escalated"] != "1" {
		t.Errorf("all urgent: %v", all)
	}
	if all := rows["all/normal"]; all == nil || all["queued"] != "6" || all["dead-lettered"] != "1" || all["overdue"] != "0" {
		t.Errorf("all normal: %v", all)
	}
	if nl := rows["nl-police/normal"]; nl == nil || nl["queued"] != "1" || nl["acknowledged"] != "0" || nl["dead-lettered"] != "1" {
		t.Errorf("nl-police normal: %v", nl)
	}
	if de["dead-lettered"] != "0" || fr["dead-lettered"] != "0" {
		t.Errorf("dead-lettered without a dead_lettered event: de-bka %v, fr-police %v", de, fr)
	}
	replayOutputs(t, rep.Replay)
	msgs := map[string]string{}
	for _, m := range relaytest.DataRows(page, "message-kind") {
		msgs[m["from"]+"/"+m["message-kind"]] = m["sent"] + "/" + m["delivered"] + "/" + m["acknowledged"]
	}
	if fmt.Sprint(msgs) != "map[authority/request_information:1/1/0 platform/response:1/0/1]" {
		t.Errorf("messages (sent/delivered/acknowledged): %v", msgs)
	}
	steps := relaytest.DataMap(page, "attachment-step", "count")
	if fmt.Sprint(steps) != "map[acknowledged:1 added:1 delivered:1 queued:1]" {
		t.Errorf("evidence files: %v", steps)
	}
	links := relaytest.DataMap(page, "link", "count")
	if fmt.Sprint(links) != "map[followed_up:1 superseded:1]" {
		t.Errorf("follow-ups and corrections: %v", links)
	}
	reasons := relaytest.DataMap(page, "reason", "count")
	if reasons["malformed"] != "5" || reasons["invalid:category"] != "1" || reasons["body_too_large"] != "2" || len(reasons) != 3 {
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

// replayOutputs checks that `audit replay`'s CSV and text hold the
// service-level counts of the report's log, as its JSON does.
func replayOutputs(t *testing.T, r *auditlog.Replay) {
	t.Helper()
	want := map[string]string{ // escalated/late/overdue/dead-lettered
		"fr-police/urgent": "1/0/1/0", "at-police/urgent": "0/1/0/0", "nl-police/normal": "0/0/0/1",
		"de-bka/urgent": "0/0/0/0", "all/urgent": "1/1/1/0", "all/normal": "0/0/0/1",
	}
	var c bytes.Buffer
	if err := r.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("CSV: %v %q", err, recs)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	got := map[string]string{}
	for _, rec := range recs[1:] {
		got[rec[0]+"/"+rec[1]] = strings.Join([]string{rec[col["escalated"]], rec[col["late"]], rec[col["overdue"]], rec[col["dead_lettered"]]}, "/")
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("CSV %s: escalated/late/overdue/dead_lettered %q, want %q", k, got[k], v)
		}
	}
	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(txt.String(), "\n")
	head := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "AUTHORITY") {
			head = i
		}
	}
	if head < 0 || !strings.Contains(txt.String(), "deliveries dead-lettered (every kind): 2\n") {
		t.Fatalf("text:\n%s", txt.String())
	}
	split := regexp.MustCompile(`\s{2,}`)
	hcols := split.Split(strings.TrimSpace(lines[head]), -1)
	hcol := map[string]int{}
	for i, h := range hcols {
		hcol[h] = i
	}
	got = map[string]string{}
	for _, l := range lines[head+1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		f := split.Split(strings.TrimSpace(l), -1)
		if len(f) != len(hcols) {
			t.Fatalf("text row %q: %d columns under %d headings", l, len(f), len(hcols))
		}
		got[f[0]+"/"+f[1]] = strings.Join([]string{f[hcol["ESCALATED"]], f[hcol["LATE"]], f[hcol["OVERDUE"]], f[hcol["DEAD-LETTERED"]]}, "/")
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("text %s: escalated/late/overdue/dead-lettered %q, want %q", k, got[k], v)
		}
	}
}
