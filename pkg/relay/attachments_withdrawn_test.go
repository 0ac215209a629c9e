package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// queuedDeliveries reads authority's queue in NR_DELIVERIES (whatever was
// handed out or acknowledged), in order.
func queuedDeliveries(t *testing.T, r *relaytest.Relay, authority string) []*delivery.Delivery {
	t.Helper()
	js, err := jetstream.New(r.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream.Deliveries, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.DeliverySubject(authority, "*", "*")}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*delivery.Delivery
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			d, err := delivery.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		if got == 0 {
			return out
		}
	}
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
	files := [][]byte{fileOf(600<<10, 21), fileOf(300<<10, 22)}
	for _, f := range files {
		if resp := upload(t, r, "examplenet", id, bytes.NewReader(f), int64(len(f)), "f.png", ""); resp.Status != http.StatusCreated {
			t.Fatalf("upload: %s", resp)
		}
	}
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
