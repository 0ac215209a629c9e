package relay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/noticerelay/noticerelay/pkg/auditlog"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// attachmentMarker is in a file's name and in its bytes: it must reach no
// event, no log line and no file of the store in clear.
const attachmentMarker = "ATTMARK-v81Kq-evidence-must-stay-sealed"

// fileOf is size bytes of reproducible noise, with the marker inside.
func fileOf(size int, seed uint64) []byte {
	b := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = rng.Read(b)
	if size > 2*len(attachmentMarker) {
		copy(b[size/2:], attachmentMarker)
	}
	return b
}

// okBodies is every request body the receiver answered 2xx.
func (rc *receiver) okBodies() []string {
	var out []string
	for _, c := range rc.ok {
		out = append(out, string(c.body))
	}
	return out
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// upload posts body as a file of notice id; a negative length sends it
// without Content-Length (chunked).
func upload(t *testing.T, r *relaytest.Relay, platform, id string, body io.Reader, length int64, name, query string) *relaytest.Response {
	t.Helper()
	req, err := http.NewRequest("POST", r.URL+"/v1/notices/"+id+"/attachments"+query, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Authorization", "Bearer "+r.Tokens["platform:"+platform])
	req.Header.Set("Content-Type", "image/png")
	if name != "" {
		req.Header.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return &relaytest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// uploaded uploads size bytes of noise (seed) named name as a file of
// notice id of examplenet, checks the 201, and returns the bytes.
func uploaded(t *testing.T, r *relaytest.Relay, id, name string, size int, seed uint64) []byte {
	t.Helper()
	f := fileOf(size, seed)
	if resp := upload(t, r, "examplenet", id, bytes.NewReader(f), int64(len(f)), name, ""); resp.Status != http.StatusCreated {
		t.Fatalf("upload of %s: %s", name, resp)
	}
	return f
}

// download fetches the file of an attachment delivery and returns its
// SHA-256 (of the bytes as sent: age ciphertext for a sealed authority,
// opened with identity when given) and the status.
func download(t *testing.T, r *relaytest.Relay, authority, id string, identity age.Identity) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.URL+"/v1/inbox/"+id+"/attachment", nil)
	req.Header.Set("Authorization", "Bearer "+r.Tokens["authority:"+authority])
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, ""
	}
	in := io.Reader(resp.Body)
	if identity != nil {
		if in, err = age.Decrypt(resp.Body, identity); err != nil {
			t.Fatalf("opening the download: %v", err)
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		t.Fatalf("download of %s: %v", id, err)
	}
	return resp.StatusCode, hex.EncodeToString(h.Sum(nil))
}

// attachmentsOf leases authority's inbox until n attachment deliveries
// came, acknowledging everything else.
func attachmentsOf(t *testing.T, r *relaytest.Relay, authority string, n int) []relaytest.Delivery {
	t.Helper()
	var got []relaytest.Delivery
	relaytest.Eventually(t, wait, fmt.Sprintf("%d attachment deliveries for %s", n, authority), func() bool {
		for _, d := range r.Inbox(authority, 100) {
			if d.Type == "attachment" {
				got = append(got, d)
			} else {
				r.Ack(authority, d.ID)
			}
		}
		return len(got) >= n
	})
	return got
}

// A 32 MiB file reaches three authorities (sealed with age, by webhook,
// pulled in clear), each copy whole; the limits answer 200, 409 and 413.
func TestAttachmentToThreeAuthorities(t *testing.T) {
	identity, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("webhook-secret-0123456789abcdef")
	t.Setenv(webhookSecretEnv, string(secret))
	rc := newReceiver(t, secret, 0)
	logs := &relaytest.Buffer{}
	r := relaytest.Start(t, relaytest.Options{Log: zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.AddSync(logs), zapcore.DebugLevel), Config: func(c *config.Config) {
		webhookConfig(rc.URL, 5)(c)
		for i := range c.Authorities {
			switch c.Authorities[i].ID {
			case "de-bka": // webhookConfig made it a webhook authority
			case "fr-police":
				c.Authorities[i].AgeRecipient = identity.Recipient().String()
			}
		}
	}})
	id := r.Submit("examplenet", relaytest.Notice("ATT-1", false, "AT", "DE", "FR"))

	big := fileOf(32<<20, 1)
	resp := upload(t, r, "examplenet", id, bytes.NewReader(big), int64(len(big)), attachmentMarker+".png", "")
	if resp.Status != http.StatusCreated {
		t.Fatalf("upload: %s", resp)
	}
	want := map[string]any{"sha256": sum(big), "size": float64(len(big)), "media_type": "image/png",
		"filename": attachmentMarker + ".png", "relevance": "reported"}
	if got := resp.Map(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("upload answer %v, want %v", got, want)
	}
	if again := upload(t, r, "examplenet", id, bytes.NewReader(big), int64(len(big)), attachmentMarker+".png", ""); again.Status != http.StatusOK ||
		fmt.Sprint(again.Map()) != fmt.Sprint(want) {
		t.Fatalf("same upload again: %s", again)
	}

	// Pulled in clear.
	at := attachmentsOf(t, r, "at-police", 1)
	if at[0].NoticeID != id || fmt.Sprint(at[0].Attachment) != fmt.Sprint(want) {
		t.Fatalf("at-police delivery: %+v", at[0])
	}
	if st, got := download(t, r, "at-police", at[0].ID, nil); st != http.StatusOK || got != sum(big) {
		t.Fatalf("at-police download: %d %s", st, got)
	}
	if st, _ := download(t, r, "fr-police", at[0].ID, nil); st != http.StatusNotFound {
		t.Fatalf("another authority's download: %d, want 404", st)
	}
	if r.Ack("at-police", at[0].ID) != http.StatusNoContent {
		t.Fatal("ack")
	}

	// Sealed: the description in the ciphertext, the bytes through age.
	fr := attachmentsOf(t, r, "fr-police", 1)
	if fr[0].Attachment != nil || fr[0].Ciphertext == "" {
		t.Fatalf("fr-police delivery not sealed: %+v", fr[0])
	}
	plain, err := delivery.Open(fr[0].Ciphertext, identity)
	if err != nil || !strings.Contains(string(plain), sum(big)) {
		t.Fatalf("opening fr-police's delivery: %v %s", err, plain)
	}
	if st, got := download(t, r, "fr-police", fr[0].ID, identity); st != http.StatusOK || got != sum(big) {
		t.Fatalf("fr-police download: %d %s", st, got)
	}

	// Webhook: the POST announces the file; the authority fetches it.
	var hooked struct {
		ID         string         `json:"id"`
		Type       string         `json:"type"`
		Attachment map[string]any `json:"attachment"`
	}
	relaytest.Eventually(t, wait, "the webhook's attachment delivery", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, c := range rc.ok {
			if json.Unmarshal(c.body, &hooked) == nil && hooked.Type == "attachment" {
				return true
			}
		}
		return false
	})
	if fmt.Sprint(hooked.Attachment) != fmt.Sprint(want) {
		t.Fatalf("webhook delivery: %+v", hooked)
	}
	if st, got := download(t, r, "de-bka", hooked.ID, nil); st != http.StatusOK || got != sum(big) {
		t.Fatalf("de-bka download: %d %s", st, got)
	}

	// One byte over the limit: 413, refused from Content-Length and, sent
	// chunked, while streaming.
	over := io.MultiReader(bytes.NewReader(big), strings.NewReader("x"))
	if resp := upload(t, r, "examplenet", id, over, int64(len(big)+1), "over.bin", ""); resp.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("one byte over, with Content-Length: %s", resp)
	}
	over = io.MultiReader(bytes.NewReader(big), strings.NewReader("x"))
	if resp := upload(t, r, "examplenet", id, over, -1, "over.bin", ""); resp.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("one byte over, chunked: %s", resp)
	}
	// 19 more files fill the notice; the 21st is refused, a repeat is not.
	for i := range 19 {
		small := fileOf(1000+i, uint64(100+i))
		if resp := upload(t, r, "examplenet", id, bytes.NewReader(small), int64(len(small)), fmt.Sprintf("f%d.png", i), "?relevance=supplemental"); resp.Status != http.StatusCreated {
			t.Fatalf("file %d: %s", i+2, resp)
		}
	}
	extra := fileOf(5000, 999)
	if resp := upload(t, r, "examplenet", id, bytes.NewReader(extra), int64(len(extra)), "f21.png", ""); resp.Status != http.StatusConflict {
		t.Fatalf("21st file: %s", resp)
	}
	small := fileOf(1000, 100)
	if resp := upload(t, r, "examplenet", id, bytes.NewReader(small), int64(len(small)), "f0.png", "?relevance=supplemental"); resp.Status != http.StatusOK {
		t.Fatalf("a repeat at the limit: %s", resp)
	}
	// Every recipient gets every file: 20 attachment deliveries each.
	more := attachmentsOf(t, r, "at-police", 19)
	if len(more) != 19 {
		t.Fatalf("at-police has %d more attachment deliveries, want 19", len(more))
	}
	for _, d := range more {
		r.Ack("at-police", d.ID)
	}
	relaytest.Eventually(t, wait, "20 files at the webhook", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return strings.Count(fmt.Sprint(rc.okBodies()), `"type":"attachment"`) == 20
	})

	// The log: each file added once, queued once per recipient; named by
	// its pseudonym only, never by its name or hash.
	events := eventsText(t, r, func(all string) bool {
		return strings.Count(all, `"type":"attachment_added"`) == 20 &&
			strings.Count(all, `"type":"acknowledged"`) >= 40+3 // at-police's and the webhook's files, the notices
	})
	if n := strings.Count(events, `"type":"queued"`); n != 3+60 {
		t.Errorf("%d queued events, want 3 notices and 60 files", n)
	}
	for _, secret := range []string{attachmentMarker, sum(big), sum(small), "f0.png"} {
		if strings.Contains(events, secret) {
			t.Errorf("the events hold %q", secret)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	rep := replayVerified(t, r)
	if want := (auditlog.AttachmentCount{Added: 20, Queued: 60, Delivered: 41, Acknowledged: 40}); rep.Attachments != want {
		t.Errorf("replay counts %+v, want %+v", rep.Attachments, want)
	}

	// Nothing under the data dir holds the file's bytes, name or hash in
	// clear.
	dir := r.DataDir
	r.Stop()
	if scanned := filesHolding(t, dir, attachmentMarker, sum(big)); scanned < 5 {
		t.Fatalf("scanned %d files", scanned)
	}
}

// Bad uploads are refused field by field; other platforms and withdrawn
// notices get 404 and 409.
func TestAttachmentRefusals(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	id := r.Submit("examplenet", relaytest.Notice("ATT-2", false, "AT", "", ""))
	file := fileOf(2000, 7)
	resp := r.DoHeader("POST", "/v1/notices/"+id+"/attachments?relevance=maybe&x=1", "platform:examplenet",
		http.Header{"Content-Type": {"not a type"}, "Content-Disposition": {`attachment; filename="../etc/passwd"`}}, file)
	if resp.Status != http.StatusBadRequest {
		t.Fatalf("bad upload: %s", resp)
	}
	for _, field := range []string{`"Content-Type"`, `"Content-Disposition"`, `"relevance"`, `"x"`} {
		if !strings.Contains(string(resp.Body), field) {
			t.Errorf("no error for %s: %s", field, resp.Body)
		}
	}
	if resp := r.DoHeader("POST", "/v1/notices/"+id+"/attachments", "platform:examplenet", http.Header{"Content-Type": {"image/png"}}, []byte{}); resp.Status != http.StatusBadRequest {
		t.Fatalf("empty file: %s", resp)
	}
	if resp := upload(t, r, "othernet", id, bytes.NewReader(file), int64(len(file)), "", ""); resp.Status != http.StatusNotFound {
		t.Fatalf("another platform: %s", resp)
	}
	if resp := upload(t, r, "examplenet", "00000000-0000-0000-0000-000000000000", bytes.NewReader(file), int64(len(file)), "", ""); resp.Status != http.StatusNotFound {
		t.Fatalf("unknown notice: %s", resp)
	}
	if resp := upload(t, r, "examplenet", id, bytes.NewReader(file), int64(len(file)), "", ""); resp.Status != http.StatusCreated {
		t.Fatalf("upload: %s", resp)
	}
	if resp := r.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:examplenet", map[string]any{"reason": "sent in error"}); resp.Status != http.StatusAccepted {
		t.Fatalf("withdraw: %s", resp)
	}
	other := fileOf(3000, 8)
	if resp := upload(t, r, "examplenet", id, bytes.NewReader(other), int64(len(other)), "", ""); resp.Status != http.StatusConflict {
		t.Fatalf("upload to a withdrawn notice: %s", resp)
	}
}

// `inbox pull` writes each file beside its delivery, decrypted, checked
// against its SHA-256, before it acknowledges the delivery: from the HTTP
// inbox, sealed or not, and from NATS directly.
func TestAttachmentPull(t *testing.T) {
	identity, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0"
		for i := range c.Authorities {
			switch c.Authorities[i].ID {
			case "de-bka":
				c.Authorities[i].AgeRecipient = identity.Recipient().String()
			case "fr-police":
				c.Authorities[i].Delivery = config.Delivery{Mode: config.ModeNATS}
			}
		}
	}})
	id := r.Submit("examplenet", relaytest.Notice("ATT-3", false, "AT", "DE", "FR"))
	file := fileOf(3<<20+17, 3)
	if resp := upload(t, r, "examplenet", id, bytes.NewReader(file), int64(len(file)), "Screen shot "+attachmentMarker+".PNG", ""); resp.Status != http.StatusCreated {
		t.Fatalf("upload: %s", resp)
	}
	keyFile := filepath.Join(t.TempDir(), "de.key")
	if err := os.WriteFile(keyFile, []byte(identity.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		authority string
		args      []string
	}{{"de-bka", []string{"--identity", keyFile}}, {"at-police", nil},
		// Deliveries from NATS directly, the file over --url.
		{"fr-police", []string{"--nats", r.NATSURL(), "--authority", "fr-police"}}} {
		out := t.TempDir()
		var pulled string
		relaytest.Eventually(t, wait, c.authority+"'s file", func() bool {
			code, stdout, errs := runCLI(t, append([]string{"inbox", "pull", "--url", r.URL, "--token",
				r.Tokens["authority:"+c.authority], "--out", out, "--once"}, c.args...)...)
			if code != 0 {
				t.Fatalf("pull: %d %s", code, errs)
			}
			pulled += stdout
			return strings.Contains(pulled, " attachment")
		})
		did := ""
		for _, line := range strings.Split(pulled, "\n") { // "<delivery id> <priority> <type>"
			if f := strings.Fields(line); len(f) == 3 && f[2] == "attachment" {
				did = f[0]
			}
		}
		data, err := os.ReadFile(filepath.Join(out, did+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var written struct {
			Type       string         `json:"type"`
			Attachment map[string]any `json:"attachment"`
			File       string         `json:"file"`
		}
		if err := json.Unmarshal(data, &written); err != nil || written.Type != "attachment" || written.File != did+".PNG" ||
			written.Attachment["sha256"] != sum(file) {
			t.Fatalf("%s: written delivery %v %s", c.authority, err, data)
		}
		got, err := os.ReadFile(filepath.Join(out, written.File))
		if err != nil || !bytes.Equal(got, file) {
			t.Fatalf("%s: the file differs (%v)", c.authority, err)
		}
		// The receipt, on either path (a NATS ack through receipts).
		relaytest.Eventually(t, wait, c.authority+"'s receipt of the file", func() bool {
			return r.Events("nr.event.*.acknowledged."+c.authority+".attachment.*") == 1 &&
				r.Events("nr.event.*.attachment_delivered."+c.authority+".attachment.*") == 1
		})
	}
}

// receivedWhole checks that d, a delivery to authority, is file of notice
// id, fetches the file whole and acknowledges d.
func receivedWhole(t *testing.T, r *relaytest.Relay, authority string, d relaytest.Delivery, id string, file []byte) {
	t.Helper()
	if d.NoticeID != id || d.Attachment["sha256"] != sum(file) {
		t.Fatalf("%s got %+v", authority, d)
	}
	if st, h := download(t, r, authority, d.ID, nil); st != http.StatusOK || h != sum(file) {
		t.Fatalf("%s download: %d %s", authority, st, h)
	}
	r.Ack(authority, d.ID)
}

// A follow-up that reaches an authority the earlier notice did not reach
// brings it every file of the earlier notice, also one added afterwards.
func TestAttachmentReachesFollowUpRecipients(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	earlier := r.Submit("examplenet", relaytest.Notice("CASE-F1", false, "AT", "", ""))
	first := uploaded(t, r, earlier, "first.png", 300<<10, 11)
	fu := relaytest.Notice("CASE-F2", false, "NL", "", "")
	fu["follow_up_of"] = "CASE-F1"
	r.Submit("examplenet", fu)
	receivedWhole(t, r, "nl-police", attachmentsOf(t, r, "nl-police", 1)[0], earlier, first)
	second := uploaded(t, r, earlier, "second.png", 200<<10, 12)
	receivedWhole(t, r, "nl-police", attachmentsOf(t, r, "nl-police", 1)[0], earlier, second)
	if at := attachmentsOf(t, r, "at-police", 2); len(at) != 2 {
		t.Fatalf("at-police got %d files", len(at))
	}
}

// An escalation target sees the whole notice: the files stored before the
// escalation and those added after it, each under one delivery id.
func TestAttachmentReachesEscalationTarget(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: escalatingToEuropol(time.Second)})
	id := r.Submit("examplenet", relaytest.Notice("ESC-FILES-1", true, "", "DE", ""))
	before := uploaded(t, r, id, "before.png", 400<<10, 31)
	// The escalation copy, then the file (handed out together or not).
	var types []string
	var got []relaytest.Delivery
	relaytest.Eventually(t, wait, "europol's copy and file", func() bool {
		for _, d := range r.Inbox("europol", 100) {
			types = append(types, d.Type)
			if d.Type == "attachment" {
				got = append(got, d)
			} else {
				r.Ack("europol", d.ID)
			}
		}
		return len(got) > 0
	})
	if types[0] != "escalation" || len(got) != 1 {
		t.Fatalf("europol was handed out %v", types)
	}
	if got[0].Priority != "urgent" {
		t.Errorf("europol's file: priority %s, want the notice's", got[0].Priority)
	}
	receivedWhole(t, r, "europol", got[0], id, before)
	after := uploaded(t, r, id, "after.png", 200<<10, 32)
	last := attachmentsOf(t, r, "europol", 1)[0]
	receivedWhole(t, r, "europol", last, id, after)
	// The withdrawal covers the target too: it is told, and the files are
	// no longer handed out.
	if resp := r.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:examplenet", map[string]any{"reason": "sent in error"}); resp.Status != http.StatusAccepted {
		t.Fatalf("withdraw: %s", resp)
	}
	if w := r.InboxUntil("europol", 1, wait); w[0].Type != "withdrawal" || w[0].NoticeID != id {
		t.Fatalf("europol after the withdrawal: %+v", w[0])
	}
	gone(t, r, "europol", last.ID)
	// One delivery per (file, authority): de-bka's two and europol's two.
	relaytest.Eventually(t, wait, "four attachment deliveries queued", func() bool {
		return r.Events("nr.event.*.queued.*.attachment.*") == 4
	})
}

// Files expire with retention.notices: every chunk, record and index entry
// of NR_ATTACHMENTS is gone with the notice, and the download is 404.
func TestAttachmentExpiresWithTheNotice(t *testing.T) {
	const retention = 4 * time.Second
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Retention.Notices = config.Duration(retention)
	}})
	messages := func() uint64 {
		js, err := jetstream.New(r.Conn())
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(context.Background(), stream.Attachments)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if time.Duration(info.Config.MaxAge) != retention {
			t.Fatalf("NR_ATTACHMENTS max age %v, want retention.notices %v", info.Config.MaxAge, retention)
		}
		return info.State.Msgs
	}
	id := r.Submit("examplenet", relaytest.Notice("EXPIRE-FILE-1", false, "AT", "", ""))
	uploaded(t, r, id, "f.png", 300<<10, 41)
	if n := messages(); n < 4 { // two chunks, the record, the index entry
		t.Fatalf("NR_ATTACHMENTS holds %d messages after the upload", n)
	}
	got := attachmentsOf(t, r, "at-police", 1)
	relaytest.Eventually(t, wait, "the file to expire", func() bool { return messages() == 0 })
	if st, _ := download(t, r, "at-police", got[0].ID, nil); st != http.StatusNotFound {
		t.Fatalf("download of an expired file: %d", st)
	}
}

// queuedDeliveries reads authority's queue in NR_DELIVERIES (whatever was
// handed out or acknowledged), in order.
func queuedDeliveries(t *testing.T, r *relaytest.Relay, authority string) []*delivery.Delivery {
	t.Helper()
	var out []*delivery.Delivery
	eachMessage(t, r, stream.Deliveries, []string{stream.DeliverySubject(authority, "*", "*")}, func(m jetstream.Msg) {
		d, err := delivery.Decode(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	})
	return out
}

// gone fetches the file of delivery id as authority and checks that the
// relay refuses it as withdrawn.
func gone(t *testing.T, r *relaytest.Relay, authority, id string) {
	t.Helper()
	resp := r.Do("GET", "/v1/inbox/"+id+"/attachment", "authority:"+authority, nil)
	switch {
	case resp.Status != http.StatusGone:
		t.Errorf("%s: the file of a withdrawn notice answered %d, want 410", authority, resp.Status)
	case !strings.Contains(string(resp.Body), "withdrew"):
		t.Errorf("%s: 410 without the reason: %s", authority, resp.Body)
	}
}

// A withdrawal covers the notice's files on every path: the inbox (at-police)
// and push (de-bka, webhook) drop the attachment deliveries they had not
// handed out; a NATS consumer (fr-police) still reads them from its queue,
// but the relay answers 410 for the bytes, to every authority, also for a
// delivery handed out before; `inbox pull` writes such a delivery without
// a file and acknowledges it.
func TestAttachmentWithdrawnOnEveryPath(t *testing.T) {
	secret := []byte("webhook-secret-0123456789abcdef")
	t.Setenv(webhookSecretEnv, string(secret))
	rc := newReceiver(t, secret, 0)
	// No push at first: nothing reaches the webhook before the withdrawal.
	r := relaytest.Start(t, relaytest.Options{Services: []string{"status", "routing", "inbox", "receipts", "intake", "attachments"},
		Config: func(c *config.Config) {
			webhookConfig(rc.URL, 5)(c)
			for i := range c.Authorities {
				if c.Authorities[i].ID == "fr-police" {
					c.Authorities[i].Delivery = config.Delivery{Mode: config.ModeNATS}
				}
			}
		}})
	id := r.Submit("examplenet", relaytest.Notice("WD-FILES-1", false, "AT", "DE", "FR"))
	r.QueuedUntil("examplenet", wait, id)
	files := [][]byte{uploaded(t, r, id, "f1.png", 600<<10, 21), uploaded(t, r, id, "f2.png", 300<<10, 22)}
	relaytest.Eventually(t, wait, "six attachment deliveries queued", func() bool {
		return r.Events("nr.event.*.queued.*.attachment.*") == 6
	})

	// at-police is handed out the notice and one file, and fetches it.
	handed := r.Inbox("at-police", 2)
	if len(handed) != 2 || handed[0].Type != "notice" || handed[1].Type != "attachment" {
		t.Fatalf("at-police: %+v", handed)
	}
	if st, h := download(t, r, "at-police", handed[1].ID, nil); st != http.StatusOK || (h != sum(files[0]) && h != sum(files[1])) {
		t.Fatalf("download before the withdrawal: %d %s", st, h)
	}

	if resp := r.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:examplenet", map[string]any{"reason": "sent in error"}); resp.Status != http.StatusAccepted {
		t.Fatalf("withdraw: %s", resp)
	}
	relaytest.Eventually(t, wait, "three withdrawal deliveries queued", func() bool {
		return r.Events("nr.event.*.queued.*.withdrawal") == 3
	})

	// Pull: the file handed out before is refused now; the one not handed
	// out never is: the withdrawal comes, after it in the queue, alone.
	gone(t, r, "at-police", handed[1].ID)
	var types []string
	relaytest.Eventually(t, wait, "at-police's withdrawal", func() bool {
		for _, d := range r.Inbox("at-police", 100) {
			types = append(types, d.Type)
			r.Ack("at-police", d.ID)
		}
		return strings.Contains(strings.Join(types, " "), "withdrawal")
	})
	if strings.Join(types, " ") != "withdrawal" {
		t.Errorf("at-police was handed out %v after the withdrawal, want only the withdrawal", types)
	}

	// NATS: the consumer reads both files' deliveries; their bytes are
	// refused, and the client writes and acknowledges them without a file.
	out := t.TempDir()
	code, stdout, errs := runCLI(t, "inbox", "pull", "--nats", r.NATSURL(), "--authority", "fr-police",
		"--url", r.URL, "--token", r.Tokens["authority:fr-police"], "--out", out, "--once")
	if code != 0 || strings.Count(stdout, " attachment") != 2 || !strings.Contains(stdout, " withdrawal") {
		t.Fatalf("nats pull: %d %q %s", code, stdout, errs)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			t.Errorf("fr-police wrote a file of a withdrawn notice: %s", e.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var p cli.Pulled
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type == "attachment" && (!p.Withdrawn || p.File != "") {
			t.Errorf("fr-police's attachment delivery as written: %s", data)
		}
	}
	if _, stdout, _ := runCLI(t, "inbox", "pull", "--nats", r.NATSURL(), "--authority", "fr-police",
		"--url", r.URL, "--token", r.Tokens["authority:fr-police"], "--out", out, "--once"); strings.TrimSpace(stdout) != "" {
		t.Errorf("fr-police's queue after the pull: %q", stdout)
	}

	// Webhook: push starts now; it sends the notice and the withdrawal,
	// never the files, whose bytes are refused too.
	r.Restart()
	relaytest.Eventually(t, wait, "the webhook's withdrawal", func() bool {
		return strings.Contains(strings.Join(rc.okBodies(), " "), `"type":"withdrawal"`)
	})
	var hooked []string
	for _, b := range rc.okBodies() {
		var d delivery.Out
		if err := json.Unmarshal([]byte(b), &d); err != nil {
			t.Fatal(err)
		}
		hooked = append(hooked, d.Type)
	}
	if strings.Join(hooked, " ") != "notice withdrawal" {
		t.Errorf("the webhook got %v, want the notice and the withdrawal", hooked)
	}
	n := 0
	for _, d := range queuedDeliveries(t, r, "de-bka") {
		if d.Type == "attachment" {
			n++
			gone(t, r, "de-bka", d.ID)
		}
	}
	if n != 2 {
		t.Errorf("de-bka's queue holds %d attachment deliveries, want 2", n)
	}
}
