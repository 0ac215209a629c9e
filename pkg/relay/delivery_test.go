package relay_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
	"github.com/noticerelay/noticerelay/pkg/webhook"
)

// runCLI runs the noticerelay command line in-process.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := cli.Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// rawInbox is the inbox answer as JSON objects, to see exactly which
// fields are there.
func rawInbox(t *testing.T, r *relaytest.Relay, authority string) []map[string]any {
	t.Helper()
	resp := r.Do("GET", "/v1/inbox?max=100", "authority:"+authority, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("inbox: %s", resp)
	}
	var in struct {
		Deliveries []map[string]any `json:"deliveries"`
	}
	if err := resp.JSON(&in); err != nil {
		t.Fatal(err)
	}
	return in.Deliveries
}

// An authority with an age recipient gets ciphertext only its key opens;
// the pull client decrypts, writes and acknowledges; and no file of the
// NATS store holds the notice in clear.
func TestSealedDeliveryAndStoreAtRest(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Inbox.Lease = config.Duration(time.Second)
		for i := range c.Authorities {
			if c.Authorities[i].ID == "de-bka" {
				c.Authorities[i].AgeRecipient = id.Recipient().String()
			}
		}
	}})
	const marker = "MARKER-q7Zx9-plaintext-must-not-reach-disk"
	n := relaytest.Notice("SEAL-1", false, "", "DE", "FR")
	n["suspicion"] = "Chat shows " + marker
	noticeID := r.Submit("examplenet", n)

	var sealed []map[string]any
	relaytest.Eventually(t, wait, "a sealed delivery for de-bka", func() bool {
		sealed = append(sealed, rawInbox(t, r, "de-bka")...)
		return len(sealed) > 0
	})
	ct, _ := sealed[0]["ciphertext"].(string)
	if _, has := sealed[0]["notice"]; has || !strings.HasPrefix(ct, "-----BEGIN AGE ENCRYPTED FILE-----") {
		t.Fatalf("sealed delivery: %v", sealed[0])
	}
	if strings.Contains(ct, marker) {
		t.Fatal("ciphertext holds the marker")
	}
	if _, err := delivery.Open(ct, other); err == nil {
		t.Fatal("another key opened the delivery")
	}
	plain, err := delivery.Open(ct, id)
	if err != nil || !bytes.Contains(plain, []byte(marker)) || !bytes.Contains(plain, []byte(`"grounds"`)) {
		t.Fatalf("open: %v %s", err, plain)
	}
	// FR has no recipient: its notice comes in clear, as before.
	fr := r.InboxUntil("fr-police", 1, wait)
	if fr[0].Notice["suspicion"] != "Chat shows "+marker {
		t.Fatalf("fr-police: %v", fr[0])
	}
	r.Ack("fr-police", fr[0].ID)

	// The pull client gets the same delivery once the lease above runs out.
	keyFile := filepath.Join(t.TempDir(), "de.key")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var pulled string
	relaytest.Eventually(t, wait, "the pull client to write the delivery", func() bool {
		code, stdout, errs := runCLI(t, "inbox", "pull", "--url", r.URL, "--token", r.Tokens["authority:de-bka"],
			"--identity", keyFile, "--out", out, "--once")
		if code != 0 {
			t.Fatalf("pull: %d %s", code, errs)
		}
		pulled += stdout
		return strings.Contains(pulled, sealed[0]["id"].(string))
	})
	data, err := os.ReadFile(filepath.Join(out, sealed[0]["id"].(string)+".json"))
	if err != nil || !bytes.Contains(data, []byte(marker)) {
		t.Fatalf("written delivery: %v %s", err, data)
	}
	var written cli.Pulled
	if err := json.Unmarshal(data, &written); err != nil || written.NoticeID != noticeID {
		t.Fatalf("written delivery: %v %+v", err, written)
	}
	relaytest.Eventually(t, wait, "status acknowledged", func() bool {
		return r.Status("examplenet", noticeID)["status"] == "acknowledged"
	})

	dir := r.DataDir
	r.Stop()
	scanned := filesHolding(t, filepath.Join(dir, "jetstream"), marker, "SEAL-1", "Chat shows")
	if scanned < 5 {
		t.Fatalf("scanned %d files", scanned)
	}
}

// receiver is a webhook endpoint on port 0 that fails its first n
// requests and records every request it answers.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	failFor  int
	requests []captured
	ok       []captured
}

type captured struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, secret []byte, failFor int) *receiver {
	rc := &receiver{failFor: failFor}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		c := captured{header: r.Header.Clone(), body: body}
		rc.requests = append(rc.requests, c)
		if _, err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
			t.Errorf("receiver: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if rc.failFor > 0 {
			rc.failFor--
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		rc.ok = append(rc.ok, c)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) counts() (requests, ok int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests), len(rc.ok)
}

func (rc *receiver) setFail(n int) {
	rc.mu.Lock()
	rc.failFor = n
	rc.mu.Unlock()
}

const webhookSecretEnv = "NR_TEST_WEBHOOK_SECRET"

// webhookConfig makes de-bka a webhook authority of rc.
func webhookConfig(url string, maxAttempts int) func(*config.Config) {
	return func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0"
		c.Deliveries.Webhook = config.WebhookSettings{Timeout: config.Duration(2 * time.Second), MaxAttempts: maxAttempts,
			Backoff: config.Duration(20 * time.Millisecond), MaxBackoff: config.Duration(100 * time.Millisecond)}
		for i := range c.Authorities {
			if c.Authorities[i].ID == "de-bka" {
				c.Authorities[i].Delivery = config.Delivery{Mode: config.ModeWebhook, URL: url, SecretEnv: webhookSecretEnv}
			}
		}
	}
}

// escalatingToEuropol makes europol de-bka's escalation target, for urgent
// deliveries left unacknowledged past deadline.
func escalatingToEuropol(deadline time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Deliveries.UrgentDeadline = config.Duration(deadline)
		for i := range c.Authorities {
			if c.Authorities[i].ID == "de-bka" {
				c.Authorities[i].Escalation = "europol"
			}
		}
	}
}

// A receiver that fails three times and then succeeds gets the delivery
// once per success, signed; the status shows one receipt.
func TestWebhookRetriesUntilReceived(t *testing.T) {
	secret := []byte("webhook-secret-0123456789abcdef")
	t.Setenv(webhookSecretEnv, string(secret))
	rc := newReceiver(t, secret, 3)
	r := relaytest.Start(t, relaytest.Options{Config: webhookConfig(rc.URL, 10)})
	id := r.Submit("examplenet", relaytest.Notice("HOOK-1", false, "", "DE", ""))

	relaytest.Eventually(t, wait, "a 2xx receipt", func() bool { _, ok := rc.counts(); return ok == 1 })
	relaytest.Eventually(t, wait, "status acknowledged", func() bool {
		return r.Status("examplenet", id)["status"] == "acknowledged"
	})
	st := r.Status("examplenet", id)
	recips := st["recipients"].([]any)
	if len(recips) != 1 || recips[0].(map[string]any)["acknowledged_at"] == nil {
		t.Fatalf("status: %v", st)
	}
	// No further POST after the receipt.
	time.Sleep(300 * time.Millisecond)
	reqs, ok := rc.counts()
	if reqs != 4 || ok != 1 {
		t.Fatalf("requests %d, successes %d; want 4 and 1", reqs, ok)
	}
	rc.mu.Lock()
	got := rc.ok[0]
	rc.mu.Unlock()
	var body delivery.Out
	if err := json.Unmarshal(got.body, &body); err != nil || body.NoticeID != id || got.header.Get(webhook.HeaderDelivery) != body.ID {
		t.Fatalf("body %s header %v: %v", got.body, got.header, err)
	}
	if got.header.Get(webhook.HeaderAttempt) != "4" {
		t.Errorf("attempt header %q, want 4", got.header.Get(webhook.HeaderAttempt))
	}
	if got.header.Get(webhook.HeaderType) != body.Type || body.Type != "notice" {
		t.Errorf("type header %q, body type %q; want notice", got.header.Get(webhook.HeaderType), body.Type)
	}
	// A receiver detects a wrong secret, a tampered body, and the captured
	// request replayed under another delivery id or type.
	if _, err := webhook.Verify([]byte("not-the-secret-not-the-secret!!"), got.header, got.body, time.Now(), 0); err != webhook.ErrSignature {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := webhook.Verify(secret, got.header, bytes.Replace(got.body, []byte("HOOK-1"), []byte("HOOK-2"), 1), time.Now(), 0); err != webhook.ErrSignature {
		t.Errorf("tampered body: %v", err)
	}
	for _, swap := range [][2]string{{webhook.HeaderDelivery, notice.DeliveryID(id, "fr-police", "notice")}, {webhook.HeaderType, "withdrawal"}} {
		h := got.header.Clone()
		h.Set(swap[0], swap[1])
		if _, err := webhook.Verify(secret, h, got.body, time.Now(), 0); err != webhook.ErrSignature {
			t.Errorf("replay with %s swapped: %v, want ErrSignature", swap[0], err)
		}
	}
	// The inbox does not hand out a webhook authority's deliveries.
	if resp := r.Do("GET", "/v1/inbox", "authority:de-bka", nil); resp.Status != http.StatusConflict {
		t.Errorf("inbox of a webhook authority: %s", resp)
	}
}

// A delivery that exhausts its retry budget is dead-lettered (event,
// metric, `deliveries dead`), and `deliveries redrive` sends it again.
func TestWebhookDeadLetterAndRedrive(t *testing.T) {
	secret := []byte("webhook-secret-0123456789abcdef")
	t.Setenv(webhookSecretEnv, string(secret))
	rc := newReceiver(t, secret, 1000)
	r := relaytest.Start(t, relaytest.Options{Config: webhookConfig(rc.URL, 3)})
	id := r.Submit("examplenet", relaytest.Notice("DEAD-1", true, "", "DE", ""))

	d := deadAfterThree(t, r, rc, "de-bka", "urgent")
	// The counter follows the dead letter's event: wait for it.
	relaytest.Eventually(t, wait, "the dead-letter metric", func() bool {
		resp := r.Do("GET", "/metrics", "", nil)
		return strings.Contains(string(resp.Body), `noticerelay_push_dead_lettered_total{authority="de-bka"} 1`)
	})
	js, _ := jetstream.New(r.Conn())
	events, _ := js.Stream(context.Background(), stream.Events)
	relaytest.Eventually(t, wait, "a dead_lettered event", func() bool {
		info, err := events.Info(context.Background(), jetstream.WithSubjectFilter("nr.event.*.dead_lettered.de-bka.notice"))
		return err == nil && len(info.State.Subjects) == 1
	})

	rc.setFail(0)
	code, out, errs := runCLI(t, "deliveries", "redrive", "--nats", r.NATSURL(), "--id", d.Delivery)
	if code != 0 || !strings.Contains(out, "redriven "+d.Delivery) {
		t.Fatalf("redrive: %d %s %s", code, out, errs)
	}
	relaytest.Eventually(t, wait, "the redriven delivery received", func() bool { _, ok := rc.counts(); return ok == 1 })
	relaytest.Eventually(t, wait, "status acknowledged", func() bool {
		return r.Status("examplenet", id)["status"] == "acknowledged"
	})
	if _, out, _ := runCLI(t, "deliveries", "dead", "--nats", r.NATSURL()); strings.TrimSpace(out) != "" {
		t.Errorf("dead after redrive: %s", out)
	}
	if code, out, _ := runCLI(t, "deliveries", "redrive", "--nats", r.NATSURL(), "--all"); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("redrive --all with nothing dead: %d %s", code, out)
	}
	// The auditors' replay counts the dead letter, and, against a deadline
	// shorter than any acknowledgement, the urgent delivery as late.
	code, out, errs = runCLI(t, "audit", "replay", "--nats", r.NATSURL(), "--csv", "--urgent-deadline", "1ms")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) < 2 {
		t.Fatalf("audit replay --csv: %d %v %s %s", code, err, out, errs)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var de []string
	for _, rec := range recs[1:] {
		if rec[0] == "de-bka" && rec[1] == "urgent" {
			de = rec
		}
	}
	if de == nil || de[col["dead_lettered"]] != "1" || de[col["late"]] != "1" || de[col["acknowledged"]] != "1" {
		t.Errorf("audit replay --csv, de-bka urgent: %v of %v", de, recs[0])
	}
}

// deadAfterThree waits for the one dead letter (`deliveries dead`) of a
// push target whose receiver rc failed three attempts, and checks it: of
// target (an authority or a platform), in queue priority.
func deadAfterThree(t *testing.T, r *relaytest.Relay, rc *receiver, target, priority string) cli.DeadLetter {
	t.Helper()
	d := oneDeadLetter(t, r.NATSURL())
	if reqs, _ := rc.counts(); reqs != 3 {
		t.Fatalf("%d attempts, want 3", reqs)
	}
	if d.Authority != target || d.Priority != priority || d.Attempts != "3" || !strings.Contains(d.Reason, "HTTP 503") {
		t.Fatalf("dead letter: %+v", d)
	}
	return d
}

// A redelivery that made no POST (here a delivery taken and put back by
// another client while push is stopped, as a push worker does when it
// cannot read the receipt) spends none of the retry budget, across a
// restart: the receiver gets max_attempts POSTs numbered 1, 2, 3, and the
// dead letter counts 3 attempts.
func TestWebhookAttemptsArePOSTs(t *testing.T) {
	secret := []byte("webhook-secret-0123456789abcdef")
	t.Setenv(webhookSecretEnv, string(secret))
	rc := newReceiver(t, secret, 1000)
	n := startNATS(t)
	hook := webhookConfig(rc.URL, 3)
	r := relaytest.Start(t, relaytest.Options{NATSURL: n.url(), Config: func(c *config.Config) {
		hook(c)
		// The retry after the first POST waits 5 to 10 s: time to stop
		// the relay before it.
		c.Deliveries.Webhook.Backoff, c.Deliveries.Webhook.MaxBackoff = config.Duration(10*time.Second), config.Duration(10*time.Second)
	}})
	r.Submit("examplenet", relaytest.Notice("POSTS-1", true, "", "DE", ""))
	relaytest.Eventually(t, wait, "the first POST", func() bool { reqs, _ := rc.counts(); return reqs == 1 })
	r.Stop()
	if reqs, _ := rc.counts(); reqs != 1 {
		t.Fatalf("%d POSTs before the relay stopped, want 1", reqs)
	}

	nc, err := nats.Connect(n.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := js.Consumer(ctx, stream.Deliveries, delivery.ConsumerName("de-bka", "urgent"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if err := m.Nak(); err != nil {
				t.Fatal(err)
			}
		}
		if got != 1 {
			t.Fatalf("redelivery %d: %d messages (%v)", i+1, got, batch.Error())
		}
	}

	r.Config.Deliveries.Webhook.Backoff, r.Config.Deliveries.Webhook.MaxBackoff = config.Duration(20*time.Millisecond), config.Duration(100*time.Millisecond)
	r.Restart()
	d := oneDeadLetter(t, n.url())
	rc.mu.Lock()
	var numbers []string
	for _, c := range rc.requests {
		numbers = append(numbers, c.header.Get(webhook.HeaderAttempt))
	}
	rc.mu.Unlock()
	if strings.Join(numbers, ",") != "1,2,3" {
		t.Errorf("the POSTs were numbered %v, want 1, 2, 3", numbers)
	}
	if d.Attempts != "3" {
		t.Errorf("the dead letter counts %s attempts, want 3", d.Attempts)
	}
}

// oneDeadLetter waits until `deliveries dead` lists one dead letter on the
// NATS server at url, and returns it.
func oneDeadLetter(t *testing.T, url string) cli.DeadLetter {
	t.Helper()
	var dead []cli.DeadLetter
	relaytest.Eventually(t, wait, "a dead letter", func() bool {
		code, out, errs := runCLI(t, "deliveries", "dead", "--nats", url)
		if code != 0 {
			t.Fatalf("dead: %d %s", code, errs)
		}
		dead = decodeLines(t, out)
		return len(dead) == 1
	})
	return dead[0]
}

func decodeLines(t *testing.T, s string) []cli.DeadLetter {
	t.Helper()
	var out []cli.DeadLetter
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var d cli.DeadLetter
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out = append(out, d)
	}
	return out
}

// Urgent first on the webhook and on the NATS pull path: with two normal
// deliveries queued before an urgent one, the urgent one comes first.
func TestUrgentFirstOnEveryPath(t *testing.T) {
	secret := []byte("webhook-secret-0123456789abcdef")
	t.Setenv(webhookSecretEnv, string(secret))
	rc := newReceiver(t, secret, 0)
	services := []string{"status", "routing", "inbox", "intake"} // no push yet
	r := relaytest.Start(t, relaytest.Options{Config: webhookConfig(rc.URL, 5), Services: services})
	var ids []string
	for i, urgent := range []bool{false, false, true} {
		ids = append(ids, r.Submit("examplenet", relaytest.Notice(fmt.Sprintf("ORDER-%d", i), urgent, "FR", "DE", "")))
	}
	// Wait for every recipient's queued event, which routing stores after
	// the delivery ("routed" comes with the decision, before it).
	r.QueuedUntil("examplenet", wait, ids...)
	// NATS pull, as fr-police (embedded server without auth here; the
	// permissions are TestShippedNATSPermissions').
	out := t.TempDir()
	code, stdout, errs := runCLI(t, "inbox", "pull", "--nats", r.NATSURL(), "--authority", "fr-police", "--out", out, "--once")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[0], "urgent") {
		t.Fatalf("nats pull: %d %q %s", code, stdout, errs)
	}
	// Webhook: start push now.
	r.Restart()
	relaytest.Eventually(t, wait, "three webhook receipts", func() bool { _, ok := rc.counts(); return ok == 3 })
	rc.mu.Lock()
	first := rc.ok[0]
	rc.mu.Unlock()
	var d delivery.Out
	if err := json.Unmarshal(first.body, &d); err != nil || d.Priority != "urgent" || d.NoticeID != ids[2] {
		t.Fatalf("first pushed: %s (%v)", first.body, err)
	}
}

// An urgent delivery left unacknowledged past its deadline is escalated:
// event, status field, and a copy to the escalation target.
func TestEscalationFiresOnTime(t *testing.T) {
	const deadline = 1500 * time.Millisecond
	r := relaytest.Start(t, relaytest.Options{Config: escalatingToEuropol(deadline)})
	urgent := r.Submit("examplenet", relaytest.Notice("ESC-1", true, "", "DE", ""))
	normal := r.Submit("examplenet", relaytest.Notice("ESC-2", false, "", "DE", ""))
	var st map[string]any
	relaytest.Eventually(t, 15*time.Second, "escalated_at in the status", func() bool {
		st = r.Status("examplenet", urgent)
		rs, _ := st["recipients"].([]any)
		return len(rs) > 0 && rs[0].(map[string]any)["escalated_at"] != nil
	})
	rc := st["recipients"].([]any)[0].(map[string]any)
	queued, _ := time.Parse(time.RFC3339Nano, rc["queued_at"].(string))
	escalated, _ := time.Parse(time.RFC3339Nano, rc["escalated_at"].(string))
	if late := escalated.Sub(queued); late < deadline || late > deadline+3*time.Second {
		t.Errorf("escalated %v after queueing, deadline %v", late, deadline)
	}
	if rc["status"] != "queued" || len(st["recipients"].([]any)) != 1 {
		t.Errorf("status: %v", st)
	}
	copies := r.InboxUntil("europol", 1, wait)
	if copies[0].Type != "escalation" || copies[0].NoticeID != urgent || copies[0].Priority != "urgent" {
		t.Fatalf("europol: %+v", copies[0])
	}
	if esc := fmt.Sprint(copies[0].Notice["escalation"]); !strings.Contains(esc, "from:de-bka") {
		t.Errorf("escalation block: %s", esc)
	}
	// The normal notice is never escalated.
	ns := r.Status("examplenet", normal)
	if ns["recipients"].([]any)[0].(map[string]any)["escalated_at"] != nil {
		t.Errorf("normal notice escalated: %v", ns)
	}
}

// A message that cannot be processed is tried a bounded number of times,
// then moves to the dead-letter stream with its reason.
func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0"
		c.Deliveries.PoisonAttempts = 2
	}})
	js, _ := jetstream.New(r.Conn())
	ctx := context.Background()
	bad := "00000000-0000-5000-8000-000000000001"
	if _, err := js.Publish(ctx, stream.DeliverySubject("nl-police", "normal", bad), []byte(`{"v":99}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, stream.NoticeSubject(bad), []byte(`{"v":42}`)); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, wait, "dead letters from inbox, routing and status", func() bool {
		r.Inbox("nl-police", 10) // the inbox meets poison only when asked
		_, out, _ := runCLI(t, "deliveries", "dead", "--nats", r.NATSURL())
		return strings.Contains(out, `"consumer":"inbox"`) && strings.Contains(out, `"consumer":"routing"`) &&
			strings.Contains(out, `"consumer":"status-bodies"`)
	})
	_, out, _ := runCLI(t, "deliveries", "dead", "--nats", r.NATSURL())
	for _, d := range decodeLines(t, out) {
		if d.Attempts != "2" || !strings.Contains(d.Reason, "version") {
			t.Errorf("dead letter %+v", d)
		}
	}
}
