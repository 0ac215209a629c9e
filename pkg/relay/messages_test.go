package relay_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// okBody is the body of the i-th request rc answered 2xx.
func (rc *receiver) okBody(i int) []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ok[i].body
}

const notifySecretEnv = "NR_TEST_NOTIFY_SECRET"

// The whole conversation about one notice, through the HTTP API: the
// police of three Member States (one sealed with age, one pulling in
// clear, one by webhook) and the platform (with a notify URL) write to
// each other; each side sees what it must and nothing more; a marker in
// every text reaches no event, no log line and no file of the store.
func TestMessagesEndToEnd(t *testing.T) {
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	webhookSecret := []byte("webhook-secret-0123456789abcdef")
	notifySecret := []byte("notify-secret-0123456789abcdef")
	t.Setenv(webhookSecretEnv, string(webhookSecret))
	t.Setenv(notifySecretEnv, string(notifySecret))
	police := newReceiver(t, webhookSecret, 0)  // fr-police's webhook
	platform := newReceiver(t, notifySecret, 1) // examplenet's notify URL, failing once
	logs := &relaytest.Buffer{}
	r := relaytest.Start(t, relaytest.Options{
		Log: zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(logs), zapcore.DebugLevel),
		Config: func(c *config.Config) {
			c.NATS.Listen = "127.0.0.1:0" // for the audit command line
			c.Deliveries.Webhook = config.WebhookSettings{Timeout: config.Duration(2 * time.Second), MaxAttempts: 5,
				Backoff: config.Duration(20 * time.Millisecond), MaxBackoff: config.Duration(100 * time.Millisecond)}
			for i := range c.Authorities {
				switch c.Authorities[i].ID {
				case "de-bka":
					c.Authorities[i].AgeRecipient = key.Recipient().String()
				case "fr-police":
					c.Authorities[i].Delivery = config.Delivery{Mode: config.ModeWebhook, URL: police.URL, SecretEnv: webhookSecretEnv}
				}
			}
			for i := range c.Platforms {
				if c.Platforms[i].ID == "examplenet" {
					c.Platforms[i].Notify = &config.Notify{URL: platform.URL, SecretEnv: notifySecretEnv}
				}
			}
		}})
	const marker = "MSGMARK-v93Kq-text-must-stay-private"
	var markers []string
	mark := func(s string) string {
		m := marker + "-" + s
		markers = append(markers, m)
		return "About the case: " + m
	}
	noticeID := r.Submit("examplenet", relaytest.Notice("MSG-1", false, "AT", "DE", "FR"))
	de := r.InboxUntil("de-bka", 1, wait)[0]
	at := r.InboxUntil("at-police", 1, wait)[0]
	r.Ack("de-bka", de.ID)
	r.Ack("at-police", at.ID)

	// The police of DE ask for preservation; a retry with the same
	// Idempotency-Key is the same message, another text under it is 409.
	ask := map[string]any{"kind": "preservation_request", "text": mark("preserve")}
	idem := http.Header{"Idempotency-Key": {"de-bka-ask-1"}}
	first := r.DoHeader("POST", "/v1/inbox/"+de.ID+"/messages", "authority:de-bka", idem, ask)
	if first.Status != http.StatusCreated {
		t.Fatalf("authority message: %s", first)
	}
	m1 := first.Map()["id"].(string)
	if again := r.DoHeader("POST", "/v1/inbox/"+de.ID+"/messages", "authority:de-bka", idem, ask); again.Status != http.StatusCreated ||
		again.Map()["id"] != m1 || again.Map()["sent_at"] != first.Map()["sent_at"] {
		t.Fatalf("retry: %s, first %s", again, first)
	}
	other := map[string]any{"kind": "preservation_request", "text": "something else"}
	if resp := r.DoHeader("POST", "/v1/inbox/"+de.ID+"/messages", "authority:de-bka", idem, other); resp.Status != http.StatusConflict {
		t.Fatalf("same key, other text: %s", resp)
	}

	// Refusals: another authority's delivery, field errors, a reply to no
	// message of the thread, another platform, a non-recipient.
	refusals := []struct {
		name, method, path, who string
		body                    any
		want                    int
		fields                  []string
	}{
		{"another authority's delivery", "POST", "/v1/inbox/" + de.ID + "/messages", "authority:at-police", ask, 404, nil},
		{"unknown delivery", "POST", "/v1/inbox/" + noticeID + "/messages", "authority:de-bka", ask, 404, nil},
		{"no token", "POST", "/v1/inbox/" + de.ID + "/messages", "", ask, 401, nil},
		{"every field wrong", "POST", "/v1/inbox/" + de.ID + "/messages", "authority:de-bka",
			map[string]any{"kind": "gossip", "text": "", "in_reply_to": "nope"}, 400, []string{"kind", "text", "in_reply_to"}},
		{"text too long", "POST", "/v1/inbox/" + de.ID + "/messages", "authority:de-bka",
			map[string]any{"kind": "other", "text": strings.Repeat("é", 10001)}, 400, []string{"text"}},
		{"unknown field", "POST", "/v1/inbox/" + de.ID + "/messages", "authority:de-bka",
			map[string]any{"kind": "other", "text": "x", "urgent": true}, 400, nil},
		{"reply to nothing", "POST", "/v1/inbox/" + de.ID + "/messages", "authority:de-bka",
			map[string]any{"kind": "other", "text": "x", "in_reply_to": noticeID}, 400, []string{"in_reply_to"}},
		{"another platform lists", "GET", "/v1/notices/" + noticeID + "/messages", "platform:othernet", nil, 404, nil},
		{"another platform writes", "POST", "/v1/notices/" + noticeID + "/messages", "platform:othernet",
			map[string]any{"to": "de-bka", "text": "x"}, 404, nil},
		{"not a recipient", "POST", "/v1/notices/" + noticeID + "/messages", "platform:examplenet",
			map[string]any{"to": "ro-police", "text": "x"}, 409, nil},
		{"no such authority", "POST", "/v1/notices/" + noticeID + "/messages", "platform:examplenet",
			map[string]any{"to": "nowhere.>", "text": "x"}, 409, nil},
		{"platform fields", "POST", "/v1/notices/" + noticeID + "/messages", "platform:examplenet",
			map[string]any{"text": " "}, 400, []string{"to", "text"}},
	}
	for _, c := range refusals {
		resp := r.Do(c.method, c.path, c.who, c.body)
		if resp.Status != c.want {
			t.Errorf("%s: want %d, got %s", c.name, c.want, resp)
			continue
		}
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		_ = resp.JSON(&p)
		var got []string
		for _, e := range p.Errors {
			got = append(got, e.Field)
		}
		if c.fields != nil && strings.Join(got, ",") != strings.Join(c.fields, ",") {
			t.Errorf("%s: fields %v, want %v", c.name, got, c.fields)
		}
	}

	// The platform's notify URL gets the message, signed, after one retry.
	relaytest.Eventually(t, wait, "the notify POST", func() bool { _, ok := platform.counts(); return ok == 1 })
	var pushed delivery.Out
	if err := json.Unmarshal(platform.okBody(0), &pushed); err != nil {
		t.Fatal(err)
	}
	var pm map[string]any
	if err := json.Unmarshal(pushed.Message, &pm); err != nil || pushed.Type != "message" || pushed.NoticeID != noticeID ||
		pm["id"] != m1 || pm["from"] != "de-bka" || pm["to"] != "platform" || pm["kind"] != "preservation_request" ||
		!strings.Contains(pm["text"].(string), marker) {
		t.Fatalf("notify: %v %+v %v", err, pushed, pm)
	}

	// The platform answers DE and writes to AT; FR writes by its webhook
	// delivery's id, and gets the platform's answer by webhook.
	answer := r.Do("POST", "/v1/notices/"+noticeID+"/messages", "platform:examplenet",
		map[string]any{"to": "de-bka", "text": mark("answer"), "in_reply_to": m1})
	if answer.Status != http.StatusCreated {
		t.Fatalf("platform answer: %s", answer)
	}
	m2 := answer.Map()["id"].(string)
	if resp := r.Do("POST", "/v1/notices/"+noticeID+"/messages", "platform:examplenet",
		map[string]any{"to": "at-police", "text": "x", "in_reply_to": m1}); resp.Status != http.StatusBadRequest {
		t.Fatalf("a reply into another thread: %s", resp)
	}
	toAT := r.Do("POST", "/v1/notices/"+noticeID+"/messages", "platform:examplenet",
		map[string]any{"to": "at-police", "text": mark("to-at")})
	if toAT.Status != http.StatusCreated {
		t.Fatalf("platform to AT: %s", toAT)
	}
	relaytest.Eventually(t, wait, "fr-police's notice by webhook", func() bool { _, ok := police.counts(); return ok >= 1 })
	var frNotice delivery.Out
	if err := json.Unmarshal(police.okBody(0), &frNotice); err != nil || frNotice.Type != "notice" {
		t.Fatalf("fr webhook: %v %+v", err, frNotice)
	}
	fromFR := r.Do("POST", "/v1/inbox/"+frNotice.ID+"/messages", "authority:fr-police",
		map[string]any{"kind": "request_information", "text": mark("fr-asks")})
	if fromFR.Status != http.StatusCreated {
		t.Fatalf("fr message: %s", fromFR)
	}
	m4 := fromFR.Map()["id"].(string)
	if resp := r.Do("POST", "/v1/notices/"+noticeID+"/messages", "platform:examplenet",
		map[string]any{"to": "fr-police", "text": mark("to-fr"), "in_reply_to": m4}); resp.Status != http.StatusCreated {
		t.Fatalf("platform to FR: %s", resp)
	}
	relaytest.Eventually(t, wait, "fr-police's message by webhook", func() bool { _, ok := police.counts(); return ok >= 2 })
	var frMsg delivery.Out
	if err := json.Unmarshal(police.okBody(1), &frMsg); err != nil || frMsg.Type != "message" ||
		!bytes.Contains(frMsg.Message, []byte(marker+"-to-fr")) {
		t.Fatalf("fr webhook message: %v %+v", err, frMsg)
	}

	// DE receives the answer sealed, opens it, acknowledges it.
	deMsg := r.InboxUntil("de-bka", 1, wait)[0]
	if deMsg.Type != "message" || deMsg.Message != nil || !strings.HasPrefix(deMsg.Ciphertext, "-----BEGIN AGE") ||
		strings.Contains(deMsg.Ciphertext, marker) {
		t.Fatalf("de-bka message delivery: %+v", deMsg)
	}
	plain, err := delivery.Open(deMsg.Ciphertext, key)
	if err != nil {
		t.Fatal(err)
	}
	var opened map[string]any
	if err := json.Unmarshal(plain, &opened); err != nil || opened["id"] != m2 || opened["from"] != "platform" ||
		opened["to"] != "de-bka" || opened["in_reply_to"] != m1 || opened["kind"] != "response" ||
		!strings.Contains(opened["text"].(string), marker+"-answer") {
		t.Fatalf("opened: %v %v", err, opened)
	}
	if got := r.Ack("de-bka", deMsg.ID); got != http.StatusNoContent {
		t.Fatalf("ack message: %d", got)
	}
	// AT sees its own message in clear, and nothing of DE's thread.
	atMsgs := r.InboxUntil("at-police", 1, wait)
	if len(atMsgs) != 1 || atMsgs[0].Message["to"] != "at-police" || atMsgs[0].Message["from"] != "platform" {
		t.Fatalf("at-police: %+v", atMsgs)
	}
	r.Ack("at-police", atMsgs[0].ID)

	// The platform's list: both directions, every thread, oldest first.
	var thread struct {
		Messages []map[string]any `json:"messages"`
	}
	if resp := r.Do("GET", "/v1/notices/"+noticeID+"/messages", "platform:examplenet", nil); resp.Status != http.StatusOK ||
		resp.JSON(&thread) != nil {
		t.Fatalf("list: %s", resp)
	}
	want := [][2]string{{"de-bka", "platform"}, {"platform", "de-bka"}, {"platform", "at-police"}, {"fr-police", "platform"}, {"platform", "fr-police"}}
	if len(thread.Messages) != len(want) {
		t.Fatalf("thread: %v", thread.Messages)
	}
	for i, w := range want {
		m := thread.Messages[i]
		if m["from"] != w[0] || m["to"] != w[1] || (i > 0 && m["sent_at"].(string) < thread.Messages[i-1]["sent_at"].(string)) {
			t.Errorf("message %d: %v, want from %s to %s", i, m, w[0], w[1])
		}
	}

	// Withdrawn: the platform may write no more; the police still may.
	if resp := r.Do("POST", "/v1/notices/"+noticeID+"/withdraw", "platform:examplenet", map[string]string{"reason": "mistake"}); resp.Status != http.StatusAccepted {
		t.Fatal(resp)
	}
	if resp := r.Do("POST", "/v1/notices/"+noticeID+"/messages", "platform:examplenet",
		map[string]any{"to": "de-bka", "text": "more"}); resp.Status != http.StatusConflict {
		t.Fatalf("after withdrawal: %s", resp)
	}
	if resp := r.Do("POST", "/v1/inbox/"+de.ID+"/messages", "authority:de-bka",
		map[string]any{"kind": "feedback", "text": mark("feedback")}); resp.Status != http.StatusCreated {
		t.Fatalf("authority after withdrawal: %s", resp)
	}

	// The events: every message sent, delivered, acknowledged, with kind,
	// sender and recipient; no text.
	events := eventsText(t, r, func(all string) bool {
		return strings.Count(all, `"type":"message_sent"`) == 6 && strings.Count(all, `"type":"message_delivered"`) == 6 &&
			strings.Count(all, `"kind":"message"`) == 18
	})
	for _, w := range []string{`"message_kind":"preservation_request"`, `"sender":"de-bka"`, `"recipient":"platform"`,
		`"message_kind":"response"`, `"kind":"message","message":"` + m2} {
		if !strings.Contains(events, w) {
			t.Errorf("events lack %s", w)
		}
	}
	// The statuses are unchanged by messages: the recipients stay three.
	if st := r.Status("examplenet", noticeID); len(st["recipients"].([]any)) != 3 {
		t.Errorf("status: %v", st)
	}

	// The auditor's tools: the log verifies, replay and the report count
	// the messages by kind and sender.
	rep := replayVerified(t, r)
	wantCounts := []auditlog.MessageCount{
		{Kind: "feedback", From: "authority", Sent: 1, Delivered: 1, Acknowledged: 1},
		{Kind: "preservation_request", From: "authority", Sent: 1, Delivered: 1, Acknowledged: 1},
		{Kind: "request_information", From: "authority", Sent: 1, Delivered: 1, Acknowledged: 1},
		{Kind: "response", From: "platform", Sent: 3, Delivered: 3, Acknowledged: 3},
	}
	if !slices.Equal(rep.Messages, wantCounts) {
		t.Errorf("replay messages %+v, want %+v", rep.Messages, wantCounts)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if code, out := auditCLI(t, "report", "--nats", r.NATSURL(), "--verifier-key", verifierKey(t, r), "--out", page); code != 0 {
		t.Fatalf("report: %d %s", code, out)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	rows := relaytest.DataRows(html, "message-kind")
	if len(rows) != 4 || rows[3]["message-kind"] != "response" || rows[3]["sent"] != "3" || rows[3]["from"] != "platform" {
		t.Errorf("report rows: %v", rows)
	}
	for _, m := range markers {
		if bytes.Contains(html, []byte(m)) {
			t.Errorf("the report holds %q", m)
		}
	}

	dir := r.DataDir
	r.Stop()
	for _, m := range markers {
		if strings.Contains(events, m) {
			t.Errorf("events contain %q", m)
		}
		if strings.Contains(logs.String(), m) {
			t.Errorf("logs contain %q", m)
		}
	}
	if !strings.Contains(logs.String(), "push") {
		t.Errorf("no log line of the notify retry: the log capture may be broken")
	}
	scanned := filesHolding(t, dir, marker)
	if scanned < 5 {
		t.Fatalf("scanned %d files", scanned)
	}
}

// eventsText reads the whole event stream until done says it holds what
// the test waits for.
func eventsText(t *testing.T, r *relaytest.Relay, done func(string) bool) string {
	t.Helper()
	var all string
	relaytest.Eventually(t, wait, "the message events", func() bool {
		all, _ = allEvents(t, r)
		return done(all)
	})
	return all
}

// TestNotifyDeadLetterAndRedrive: a message to a platform whose notify URL
// keeps failing is retried up to the webhook budget, then dead-lettered
// like an authority's webhook delivery (event naming the platform as
// recipient, `deliveries dead`); `deliveries redrive` sends it again, and
// the platform's listing holds it all along.
func TestNotifyDeadLetterAndRedrive(t *testing.T) {
	secret := []byte("notify-secret-0123456789abcdef")
	t.Setenv(notifySecretEnv, string(secret))
	platform := newReceiver(t, secret, 1000)
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0" // for the deliveries command line
		c.Deliveries.Webhook = config.WebhookSettings{Timeout: config.Duration(2 * time.Second), MaxAttempts: 3,
			Backoff: config.Duration(20 * time.Millisecond), MaxBackoff: config.Duration(100 * time.Millisecond)}
		for i := range c.Platforms {
			if c.Platforms[i].ID == "examplenet" {
				c.Platforms[i].Notify = &config.Notify{URL: platform.URL, SecretEnv: notifySecretEnv}
			}
		}
	}})
	noticeID := r.Submit("examplenet", relaytest.Notice("NOTIFY-1", false, "", "DE", ""))
	de := r.InboxUntil("de-bka", 1, wait)[0]
	sent := r.Do("POST", "/v1/inbox/"+de.ID+"/messages", "authority:de-bka",
		map[string]any{"kind": "request_information", "text": "Which accounts share the device?"})
	if sent.Status != http.StatusCreated {
		t.Fatalf("message: %s", sent)
	}
	msgID := sent.Map()["id"].(string)

	d := deadAfterThree(t, r, platform, "examplenet", "notify")
	eventsText(t, r, func(all string) bool {
		return strings.Contains(all, `"type":"dead_lettered"`) && strings.Contains(all, `"recipient":"platform"`)
	})

	platform.setFail(0)
	if code, out, errs := runCLI(t, "deliveries", "redrive", "--nats", r.NATSURL(), "--id", d.Delivery); code != 0 ||
		!strings.Contains(out, "redriven "+d.Delivery) {
		t.Fatalf("redrive: %d %s %s", code, out, errs)
	}
	relaytest.Eventually(t, wait, "the redriven message at the notify URL", func() bool { _, ok := platform.counts(); return ok == 1 })
	var pushed delivery.Out
	var pm map[string]any
	if err := json.Unmarshal(platform.okBody(0), &pushed); err != nil || json.Unmarshal(pushed.Message, &pm) != nil ||
		pushed.Type != "message" || pushed.NoticeID != noticeID || pm["id"] != msgID {
		t.Fatalf("pushed: %v %+v %v", err, pushed, pm)
	}
	var thread struct {
		Messages []map[string]any `json:"messages"`
	}
	if resp := r.Do("GET", "/v1/notices/"+noticeID+"/messages", "platform:examplenet", nil); resp.JSON(&thread) != nil ||
		len(thread.Messages) != 1 || thread.Messages[0]["id"] != msgID {
		t.Errorf("listing: %s", resp)
	}
}

// TestMessagesThroughInboxPull: the platform's answer reaches the police
// as a delivery of type message on the other two paths as well: `inbox
// pull` over HTTP opening a sealed one with the authority's key, and over
// NATS from the authority's own consumers; each writes the message in
// clear beside the notice and acknowledges it.
func TestMessagesThroughInboxPull(t *testing.T) {
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0" // for inbox pull --nats
		for i := range c.Authorities {
			if c.Authorities[i].ID == "de-bka" {
				c.Authorities[i].AgeRecipient = key.Recipient().String()
			}
		}
	}})
	keyFile := filepath.Join(t.TempDir(), "de.key")
	if err := os.WriteFile(keyFile, []byte(key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noticeID := r.Submit("examplenet", relaytest.Notice("PULL-MSG-1", false, "FR", "DE", ""))
	paths := map[string][]string{
		"de-bka":    {"--url", r.URL, "--token", r.Tokens["authority:de-bka"], "--identity", keyFile},
		"fr-police": {"--nats", r.NATSURL(), "--authority", "fr-police"},
	}
	// pull runs the client until it has written a delivery of type typ and
	// returns what it wrote.
	pull := func(auth, typ string) cli.Pulled {
		t.Helper()
		out := t.TempDir()
		var got cli.Pulled
		relaytest.Eventually(t, wait, auth+"'s "+typ+" pulled", func() bool {
			code, stdout, errs := runCLI(t, append(append([]string{"inbox", "pull"}, paths[auth]...), "--out", out, "--once")...)
			if code != 0 {
				t.Fatalf("%s pull: %d %s", auth, code, errs)
			}
			for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[2] == typ {
					data, err := os.ReadFile(filepath.Join(out, f[0]+".json"))
					if err != nil || json.Unmarshal(data, &got) != nil {
						t.Fatalf("%s: written %s: %v %s", auth, f[0], err, data)
					}
					return true
				}
			}
			return false
		})
		return got
	}
	for auth := range paths {
		if n := pull(auth, "notice"); n.NoticeID != noticeID {
			t.Fatalf("%s: notice %+v", auth, n)
		}
		text := "Preserved for " + auth + " until 2027-03-01."
		if resp := r.Do("POST", "/v1/notices/"+noticeID+"/messages", "platform:examplenet",
			map[string]any{"to": auth, "text": text}); resp.Status != http.StatusCreated {
			t.Fatalf("to %s: %s", auth, resp)
		}
		m := pull(auth, "message")
		var body map[string]any
		if err := json.Unmarshal(m.Message, &body); err != nil || m.NoticeID != noticeID || m.Notice != nil ||
			body["text"] != text || body["from"] != "platform" || body["to"] != auth {
			t.Errorf("%s: message written %+v (%v)", auth, m, err)
		}
		if extra := r.Inbox(auth, 10); len(extra) != 0 {
			t.Errorf("%s: %d deliveries left after the pulls acknowledged them", auth, len(extra))
		}
	}
}
