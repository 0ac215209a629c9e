package relay_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// auditedRun is a short real run of a relay whose urgent deadline is runDeadline:
// two urgent notices (one acknowledged by de-bka, one left to fr-police to
// be escalated), two normal ones (one acknowledged by de-bka, one to
// nl-police withdrawn), four rejected submissions from two platforms; on
// the normal DE notice a message each way (the authority's read by the
// platform, the platform's acknowledged by de-bka) and an evidence file
// that de-bka acknowledges; three normal notices to AT, the second a
// follow-up of the first, the third a correction of the second. It returns
// the relay, its verifier key, and what a report of the run must say.
type runFigures struct {
	deAckUrgent, deAckNormal float64 // seconds from acceptance to acknowledgement
}

// runDeadline is the run's urgent deadline. de-bka's fetch and ack of its
// urgent delivery must come before it (or that one is escalated and
// overdue too): 1.5 s was not always enough on a loaded 2-core machine.
// The fr-police escalation is waited for, so a longer deadline only makes
// the run that much longer.
const runDeadline = 5 * time.Second

// runMarker is in the run's messages and file: no report may show it.
const runMarker = "RUNMARK-q8Zt-private"

func auditedRun(t *testing.T) (*relaytest.Relay, string, runFigures) {
	t.Helper()
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0"
		c.Auditors = []config.Auditor{{ID: "dsc-ie", Tokens: []config.Token{config.Digest(auditorToken)}}}
		c.Deliveries.UrgentDeadline = config.Duration(runDeadline)
	}})
	vkey, err := os.ReadFile(filepath.Join(r.DataDir, "keys", "audit-verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	urgentDE := r.Submit("examplenet", relaytest.Notice("RUN-1", true, "", "DE", ""))
	urgentFR := r.Submit("examplenet", relaytest.Notice("RUN-2", true, "", "FR", ""))
	normalDE := r.Submit("othernet", relaytest.Notice("RUN-3", false, "", "DE", ""))
	normalNL := r.Submit("othernet", relaytest.Notice("RUN-4", false, "", "NL", ""))
	// Rejections, counted per platform and window: three with a wrong
	// category (one of them also without a summary), one not JSON.
	bad := relaytest.Notice("RUN-5", false, "", "DE", "")
	bad["category"] = "not-a-category"
	for _, platform := range []string{"examplenet", "examplenet", "othernet"} {
		if resp := r.Do("POST", "/v1/notices", "platform:"+platform, bad); resp.Status != http.StatusBadRequest {
			t.Fatalf("bad notice: %s", resp)
		}
	}
	if resp := r.DoHeader("POST", "/v1/notices", "platform:othernet", http.Header{"Content-Type": {"application/json"}}, []byte("{not json")); resp.Status != http.StatusBadRequest {
		t.Fatalf("malformed notice: %s", resp)
	}
	var deNormal relaytest.Delivery
	for _, d := range r.InboxUntil("de-bka", 2, wait) {
		if d.NoticeID == normalDE {
			deNormal = d
		}
		if code := r.Ack("de-bka", d.ID); code != http.StatusOK && code != http.StatusNoContent {
			t.Fatalf("ack: %d", code)
		}
	}
	// The two-way channel on the normal DE notice.
	ask := r.Do("POST", "/v1/inbox/"+deNormal.ID+"/messages", "authority:de-bka",
		map[string]any{"kind": "request_information", "text": runMarker + " which account?"})
	if ask.Status != http.StatusCreated {
		t.Fatalf("authority message: %s", ask)
	}
	if resp := r.Do("GET", "/v1/notices/"+normalDE+"/messages", "platform:othernet", nil); resp.Status != http.StatusOK {
		t.Fatalf("platform reads: %s", resp)
	}
	if resp := r.Do("POST", "/v1/notices/"+normalDE+"/messages", "platform:othernet",
		map[string]any{"to": "de-bka", "text": runMarker + " this one", "in_reply_to": ask.Map()["id"]}); resp.Status != http.StatusCreated {
		t.Fatalf("platform answer: %s", resp)
	}
	file := []byte("\x89PNG\r\n\x1a\n" + runMarker)
	if resp := upload(t, r, "othernet", normalDE, bytes.NewReader(file), int64(len(file)), runMarker+".png", ""); resp.Status != http.StatusCreated {
		t.Fatalf("upload: %s", resp)
	}
	got := map[string]int{}
	relaytest.Eventually(t, wait, "the answer and the file in de-bka's inbox", func() bool {
		for _, d := range r.Inbox("de-bka", 10) {
			got[d.Type]++
			if code := r.Ack("de-bka", d.ID); code != http.StatusOK && code != http.StatusNoContent {
				t.Fatalf("ack %s: %d", d.Type, code)
			}
		}
		return got["message"] == 1 && got["attachment"] == 1
	})
	// A follow-up and a correction, all to at-police.
	first := r.Submit("examplenet", relaytest.Notice("RUN-7", false, "", "AT", ""))
	fu := relaytest.Notice("RUN-8", false, "", "AT", "")
	fu["follow_up_of"] = "RUN-7"
	followUp := r.Submit("examplenet", fu)
	fix := relaytest.Notice("RUN-9", false, "", "AT", "")
	fix["supersedes"] = "RUN-8"
	correction := r.Submit("examplenet", fix)
	relaytest.Eventually(t, wait, "the follow-up superseded and the correction routed", func() bool {
		rs, _ := r.Status("examplenet", correction)["recipients"].([]any)
		return r.Status("examplenet", followUp)["status"] == "superseded" && len(rs) == 1
	})
	r.QueuedUntil("examplenet", wait, first, followUp, correction) // queued events come after the decision
	r.InboxUntil("fr-police", 1, wait)                             // delivered, never acknowledged
	r.QueuedUntil("othernet", wait, normalNL)                      // withdrawn once queued
	if resp := r.Do("POST", "/v1/notices/"+normalNL+"/withdraw", "platform:othernet", map[string]string{"reason": "sent in error"}); resp.Status != http.StatusAccepted {
		t.Fatalf("withdraw: %s", resp)
	}
	relaytest.Eventually(t, runDeadline+wait, "the urgent FR notice escalated", func() bool {
		rs, _ := r.Status("examplenet", urgentFR)["recipients"].([]any)
		return len(rs) == 1 && rs[0].(map[string]any)["escalated_at"] != nil
	})
	relaytest.Eventually(t, wait, "the withdrawal and the acknowledgements in the status", func() bool {
		return r.Status("othernet", normalNL)["status"] == "withdrawn" &&
			r.Status("examplenet", urgentDE)["status"] == "acknowledged" && r.Status("othernet", normalDE)["status"] == "acknowledged" &&
			r.Events("nr.event.*.queued.*.withdrawal") == 1 // stored after the withdrawn event
	})
	ackAfter := func(platform, id string) float64 {
		st := r.Status(platform, id)
		rc := st["recipients"].([]any)[0].(map[string]any)
		accepted, _ := time.Parse(time.RFC3339Nano, st["received_at"].(string))
		acked, _ := time.Parse(time.RFC3339Nano, rc["acknowledged_at"].(string))
		return acked.Sub(accepted).Seconds()
	}
	return r, string(vkey), runFigures{deAckUrgent: ackAfter("examplenet", urgentDE), deAckNormal: ackAfter("othernet", normalDE)}
}

// checkRunReport reads the numbers of a report of auditedRun back from its
// data attributes and checks them against what the run did.
func checkRunReport(t *testing.T, page []byte, want runFigures) {
	t.Helper()
	ver := relaytest.DataRows(page, "intact")
	if len(ver) != 1 || ver[0]["intact"] != "true" || ver[0]["checkpoint-size"] == "0" {
		t.Errorf("verification: %v", ver)
	}
	figures := relaytest.DataMap(page, "figure", "value")
	if bytes.Contains(page, []byte(runMarker)) {
		t.Errorf("the report shows a message's text or a file's name")
	}
	for k, v := range map[string]string{"accepted": "7", "rejected": "4", "withdrawn": "1", "escalated": "1", "late": "0",
		"overdue": "1", "messages": "2", "attachments": "1"} {
		if figures[k] != v {
			t.Errorf("%s: %q, want %s (%v)", k, figures[k], v, figures)
		}
	}
	rows := map[string]map[string]string{}
	for _, row := range relaytest.DataRows(page, "authority") {
		rows[row["authority"]+"/"+row["priority"]] = row
	}
	near := func(got string, want float64) bool {
		g, err := strconv.ParseFloat(got, 64)
		return err == nil && g > 0 && g-want < 0.002 && want-g < 0.002
	}
	for _, c := range []struct {
		key    string
		counts map[string]string
		ack    float64
	}{
		{"de-bka/urgent", map[string]string{"queued": "1", "delivered": "1", "acknowledged": "1", "escalated": "0", "overdue": "0"}, want.deAckUrgent},
		{"de-bka/normal", map[string]string{"queued": "1", "delivered": "1", "acknowledged": "1", "escalated": "0", "overdue": "0"}, want.deAckNormal},
		{"fr-police/urgent", map[string]string{"queued": "1", "delivered": "1", "acknowledged": "0", "escalated": "1", "overdue": "1"}, 0},
		{"nl-police/normal", map[string]string{"queued": "1", "acknowledged": "0", "withdrawn": "1", "escalated": "0"}, 0},
		{"at-police/normal", map[string]string{"queued": "3", "acknowledged": "0", "withdrawn": "0"}, 0},
		{"all/urgent", map[string]string{"queued": "2", "acknowledged": "1", "escalated": "1", "late": "0", "overdue": "1"}, want.deAckUrgent},
		{"all/normal", map[string]string{"queued": "5", "acknowledged": "1", "withdrawn": "1"}, want.deAckNormal},
	} {
		row := rows[c.key]
		if row == nil {
			t.Errorf("no row %s in %v", c.key, rows)
			continue
		}
		for k, v := range c.counts {
			if row[k] != v {
				t.Errorf("%s %s: %s, want %s", c.key, k, row[k], v)
			}
		}
		if c.ack > 0 {
			for _, k := range []string{"to-acknowledged-median", "to-acknowledged-p90", "to-acknowledged-max"} {
				if !near(row[k], c.ack) {
					t.Errorf("%s %s: %s, want %.3f", c.key, k, row[k], c.ack)
				}
			}
		} else if row["to-acknowledged-median"] != "0.000" {
			t.Errorf("%s was never acknowledged, yet %s", c.key, row["to-acknowledged-median"])
		}
	}
	if len(rows) != 7 {
		t.Errorf("%d rows: %v", len(rows), rows)
	}
	reasons := relaytest.DataMap(page, "reason", "count")
	if fmt.Sprint(reasons) != "map[invalid:category:3 malformed:1]" {
		t.Errorf("rejections: %v", reasons)
	}
	msgs := map[string]string{}
	for _, m := range relaytest.DataRows(page, "message-kind") {
		msgs[m["from"]+"/"+m["message-kind"]] = m["sent"] + "/" + m["delivered"] + "/" + m["acknowledged"]
	}
	if fmt.Sprint(msgs) != "map[authority/request_information:1/1/0 platform/response:1/1/1]" {
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
	days := map[string]string{}
	for _, d := range relaytest.DataRows(page, "day") {
		days[d["category"]+"/"+d["priority"]] = d["count"]
	}
	if fmt.Sprint(days) != "map[human_trafficking/normal:5 human_trafficking/urgent:2]" {
		t.Errorf("days: %v", days)
	}
	wd := relaytest.DataRows(page, "withdrawn-authority")
	if len(wd) != 1 || wd[0]["withdrawn-authority"] != "nl-police" || wd[0]["count"] != "1" {
		t.Errorf("withdrawals: %v", wd)
	}
}

// The report of a real run says what the run did, from NATS and from an
// export; --since after the run leaves every notice out.
func TestAuditReportOfARun(t *testing.T) {
	r, vkey, want := auditedRun(t)
	dir := t.TempDir()
	deadline := runDeadline.String()
	out := filepath.Join(dir, "report.html")
	code, msg := auditCLI(t, "report", "--urgent-deadline", deadline, "--nats", r.NATSURL(), "--verifier-key", vkey, "--out", out)
	if code != 0 {
		t.Fatalf("report: %d %s", code, msg)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkRunReport(t, page, want)

	export := filepath.Join(dir, "export")
	if code, msg := auditCLI(t, "export", "--nats", r.NATSURL(), "--verifier-key", vkey, "--out", export); code != 0 {
		t.Fatalf("export: %d %s", code, msg)
	}
	r.Stop() // offline from here
	code, msg = auditCLI(t, "report", "--urgent-deadline", deadline, "--from", export, "--verifier-key", vkey, "--out", out)
	if code != 0 {
		t.Fatalf("report --from: %d %s", code, msg)
	}
	if page, err = os.ReadFile(out); err != nil {
		t.Fatal(err)
	}
	checkRunReport(t, page, want)

	later := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	if code, msg := auditCLI(t, "report", "--urgent-deadline", deadline, "--from", export, "--verifier-key", vkey, "--since", later, "--out", out); code != 0 {
		t.Fatalf("report --since: %d %s", code, msg)
	}
	page, _ = os.ReadFile(out)
	if rows := relaytest.DataRows(page, "authority"); len(rows) != 0 {
		t.Errorf("--since after the run: %v", rows)
	}
	// A changed leaf: exit status 1, and the report says so.
	leaves := filepath.Join(export, auditlog.LeavesFile)
	all, err := os.ReadFile(leaves)
	if err != nil {
		t.Fatal(err)
	}
	all[len(all)/2] ^= 0x01
	if err := os.WriteFile(leaves, all, 0o644); err != nil {
		t.Fatal(err)
	}
	code, msg = auditCLI(t, "report", "--urgent-deadline", deadline, "--from", export, "--verifier-key", vkey, "--out", out)
	page, _ = os.ReadFile(out)
	if code != 1 || !strings.Contains(msg, "BROKEN") || !bytes.Contains(page, []byte(`data-intact="false"`)) {
		t.Errorf("report of a changed export: %d %s", code, msg)
	}
	for _, args := range [][]string{
		{"report", "--from", export, "--verifier-key", vkey},
		{"report", "--from", export, "--verifier-key", vkey, "--out", out, "--since", "yesterday"},
	} {
		if code, msg := auditCLI(t, args...); code != 2 {
			t.Errorf("%v: %d %s", args, code, msg)
		}
	}
}
