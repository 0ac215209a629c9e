package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

const wait = 20 * time.Second

// A victim in one Member State, a suspect in a second and the offence in a
// third: exactly those three authorities receive it, each with its grounds,
// and the notice is acknowledged once all three acknowledge.
func TestThreeMemberStatesEndToEnd(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	id := r.Submit("examplenet", relaytest.Notice("THREE-1", false, "at", "DE", "Ro"))

	want := map[string]string{"at-police": "offence", "de-bka": "suspect", "ro-police": "victim"}
	for auth, basis := range want {
		ds := r.InboxUntil(auth, 1, wait)
		if len(ds) != 1 || ds[0].NoticeID != id || ds[0].Type != "notice" || ds[0].Priority != "normal" {
			t.Fatalf("%s inbox: %+v", auth, ds)
		}
		n := ds[0].Notice
		grounds := fmt.Sprint(n["grounds"])
		if !strings.Contains(grounds, "basis:"+basis) || !strings.Contains(grounds, "evidence:declared") {
			t.Errorf("%s grounds = %s, want basis %s", auth, grounds, basis)
		}
		if n["platform"] != "examplenet" || n["reference"] != "THREE-1" || n["received_at"] == "" {
			t.Errorf("%s notice lacks platform/reference/received_at: %v", auth, n)
		}
		if co := fmt.Sprint(n["co_recipients"]); strings.Contains(co, auth) || strings.Count(co, "authority:") != 2 {
			t.Errorf("%s co_recipients = %s", auth, co)
		}
		if got := r.Ack(auth, ds[0].ID); got != http.StatusNoContent {
			t.Fatalf("ack: %d", got)
		}
	}
	for _, other := range []string{"fr-police", "ie-garda", "nl-police", "europol"} {
		if ds := r.Inbox(other, 100); len(ds) != 0 {
			t.Errorf("%s received %+v", other, ds)
		}
	}
	relaytest.Eventually(t, wait, "status acknowledged", func() bool {
		return r.Status("examplenet", id)["status"] == "acknowledged"
	})
	st := r.Status("examplenet", id)
	recips := st["recipients"].([]any)
	if len(recips) != 3 {
		t.Fatalf("recipients: %v", recips)
	}
	for _, x := range recips {
		rc := x.(map[string]any)
		if rc["status"] != "acknowledged" || rc["acknowledged_at"] == nil {
			t.Errorf("recipient %v", rc)
		}
	}
}

func TestIdempotencyAndConflict(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	n := relaytest.Notice("IDEM-1", false, "AT", "", "")
	first := r.Do("POST", "/v1/notices", "platform:examplenet", n)
	if first.Status != http.StatusAccepted {
		t.Fatal(first)
	}
	// Same body, other whitespace and country case: 200 with the first answer.
	again := r.Do("POST", "/v1/notices", "platform:examplenet",
		strings.Replace(string(must(t, n)), `"AT"`, `"at"`, 1)+"\n\n")
	if again.Status != http.StatusOK || again.Map()["id"] != first.Map()["id"] ||
		again.Map()["received_at"] != first.Map()["received_at"] {
		t.Fatalf("repeat: %s (first %s)", again, first)
	}
	n["suspicion"] = "something else"
	if c := r.Do("POST", "/v1/notices", "platform:examplenet", n); c.Status != http.StatusConflict ||
		c.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("conflict: %s", c)
	}
	// The same reference is another notice for another platform.
	other := r.Do("POST", "/v1/notices", "platform:othernet", relaytest.Notice("IDEM-1", false, "AT", "", ""))
	if other.Status != http.StatusAccepted || other.Map()["id"] == first.Map()["id"] {
		t.Fatalf("other platform: %s", other)
	}
	// Idempotency outlives a restart.
	r.Restart()
	n["suspicion"] = "Account recruits for fake jobs abroad; see chat."
	if again := r.Do("POST", "/v1/notices", "platform:examplenet", n); again.Status != http.StatusOK {
		t.Fatalf("after restart: %s", again)
	}
	// Exactly one delivery despite the repeats.
	ds := r.InboxUntil("at-police", 2, wait)
	time.Sleep(200 * time.Millisecond)
	ds = append(ds, r.Inbox("at-police", 100)...)
	if len(ds) != 2 {
		t.Fatalf("at-police got %d deliveries, want 2 (one per platform)", len(ds))
	}
}

func must(t *testing.T, v any) []byte {
	t.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIsolation(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	id := r.Submit("examplenet", relaytest.Notice("ISO-1", false, "DE", "", ""))
	if resp := r.Do("GET", "/v1/notices/"+id, "platform:othernet", nil); resp.Status != http.StatusNotFound {
		t.Errorf("other platform's status: %s", resp)
	}
	if resp := r.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:othernet", map[string]string{"reason": "x"}); resp.Status != http.StatusNotFound {
		t.Errorf("other platform's withdrawal: %s", resp)
	}
	if resp := r.Do("GET", "/v1/notices/"+id, "authority:de-bka", nil); resp.Status != http.StatusNotFound {
		t.Errorf("authority token on platform API: %s", resp)
	}
	ds := r.InboxUntil("de-bka", 1, wait)
	if got := r.Ack("fr-police", ds[0].ID); got != http.StatusNotFound {
		t.Errorf("another authority's ack: %d", got)
	}
	bulk := r.Do("POST", "/v1/inbox/ack", "authority:fr-police", map[string]any{"ids": []string{ds[0].ID, "not-an-id"}})
	if bulk.Status != http.StatusOK || !strings.Contains(string(bulk.Body), `"status":404`) || strings.Contains(string(bulk.Body), `"status":204`) {
		t.Errorf("bulk ack of another's delivery: %s", bulk)
	}
	if got := r.Ack("de-bka", ds[0].ID); got != http.StatusNoContent {
		t.Errorf("own ack: %d", got)
	}
	if got := r.Ack("de-bka", ds[0].ID); got != http.StatusNoContent {
		t.Errorf("repeated ack: %d", got)
	}
	if resp := r.Do("GET", "/v1/inbox", "platform:examplenet", nil); resp.Status != http.StatusUnauthorized {
		t.Errorf("platform token on inbox: %s", resp)
	}
}

func TestLeaseExpiryHandsOutTheSameID(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) { c.Inbox.Lease = config.Duration(time.Second) }})
	r.Submit("examplenet", relaytest.Notice("LEASE-1", false, "FR", "", ""))
	first := r.InboxUntil("fr-police", 1, wait)
	if again := r.Inbox("fr-police", 10); len(again) != 0 {
		t.Fatalf("leased delivery handed out twice within its lease: %+v", again)
	}
	second := r.InboxUntil("fr-police", 1, wait)
	if second[0].ID != first[0].ID {
		t.Fatalf("after lease expiry got id %s, want %s", second[0].ID, first[0].ID)
	}
	if got := r.Ack("fr-police", second[0].ID); got != http.StatusNoContent {
		t.Fatal(got)
	}
	time.Sleep(1500 * time.Millisecond)
	if again := r.Inbox("fr-police", 10); len(again) != 0 {
		t.Fatalf("acknowledged delivery handed out again: %+v", again)
	}
}

func TestUrgentBeforeNormal(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	var normal, urgent []string
	for i := range 5 {
		normal = append(normal, r.Submit("examplenet", relaytest.Notice(fmt.Sprintf("N-%d", i), false, "NL", "", "")))
	}
	for i := range 3 {
		urgent = append(urgent, r.Submit("examplenet", relaytest.Notice(fmt.Sprintf("U-%d", i), true, "NL", "", "")))
	}
	// Wait until all eight are queued, without leasing any: every
	// recipient's queued event, stored after its delivery ("routed" comes
	// with the decision, before it).
	r.QueuedUntil("examplenet", wait, append(slices.Clone(normal), urgent...)...)
	ds := r.Inbox("nl-police", 4)
	if len(ds) != 4 {
		t.Fatalf("got %d", len(ds))
	}
	for i, d := range ds[:3] {
		if d.Priority != "urgent" || !slices.Contains(urgent, d.NoticeID) {
			t.Errorf("delivery %d is %s, want urgent first", i, d.Priority)
		}
	}
	if ds[3].Priority != "normal" {
		t.Errorf("fourth is %s", ds[3].Priority)
	}
}

func TestWithdrawal(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	id := r.Submit("examplenet", relaytest.Notice("WD-1", false, "AT", "DE", ""))
	for _, a := range []string{"at-police", "de-bka"} {
		r.InboxUntil(a, 1, wait)
	}
	if resp := r.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:examplenet", map[string]string{}); resp.Status != http.StatusBadRequest {
		t.Errorf("withdrawal without reason: %s", resp)
	}
	if resp := r.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:examplenet", map[string]string{"reason": "sent in error"}); resp.Status != http.StatusAccepted {
		t.Fatalf("withdraw: %s", resp)
	}
	for _, a := range []string{"at-police", "de-bka"} {
		var wd []relaytest.Delivery
		relaytest.Eventually(t, wait, "withdrawal for "+a, func() bool {
			for _, d := range r.Inbox(a, 100) {
				if d.Type == "withdrawal" {
					wd = append(wd, d)
				}
			}
			return len(wd) > 0
		})
		if wd[0].NoticeID != id || fmt.Sprint(wd[0].Notice["withdrawal"]) == "" {
			t.Errorf("withdrawal delivery %+v", wd[0])
		}
	}
	relaytest.Eventually(t, wait, "status withdrawn", func() bool {
		st := r.Status("examplenet", id)
		return st["status"] == "withdrawn" && strings.Count(fmt.Sprint(st["recipients"]), "status:withdrawn") == 2
	})
}

func TestFallbackAndLastResort(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	// No Member State in the notice: the platform's establishment (IE).
	r.Submit("examplenet", relaytest.Notice("FB-1", false, "US", "", ""))
	ds := r.InboxUntil("ie-garda", 1, wait)
	if g := fmt.Sprint(ds[0].Notice["grounds"]); !strings.Contains(g, "establishment") {
		t.Errorf("grounds %s", g)
	}
}

func TestRestartKeepsNoticesAndState(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	id := r.Submit("examplenet", relaytest.Notice("RS-1", true, "RO", "", ""))
	ds := r.InboxUntil("ro-police", 1, wait)
	r.Restart()
	if got := r.Ack("ro-police", ds[0].ID); got != http.StatusNoContent {
		t.Fatalf("ack after restart: %d", got)
	}
	relaytest.Eventually(t, wait, "acknowledged after restart", func() bool {
		return r.Status("examplenet", id)["status"] == "acknowledged"
	})
	r.Restart()
	if st := r.Status("examplenet", id); st["status"] != "acknowledged" || st["priority"] != "urgent" {
		t.Fatalf("after second restart: %v", st)
	}
}

// Idempotency outlives the body: once a notice's body has expired, the same
// reference is still answered from its reference record (200 for the same
// body, 409 for another) and is not routed again.
func TestIdempotencyOutlivesRetention(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Retention.Notices = config.Duration(2 * time.Second)
	}})
	n := relaytest.Notice("EXPIRE-1", false, "AT", "", "")
	id := r.Submit("examplenet", n)
	ds := r.InboxUntil("at-police", 1, wait)
	r.Ack("at-police", ds[0].ID)
	relaytest.Eventually(t, wait, "the body to expire", func() bool {
		js, _ := jetstream.New(r.Conn())
		s, err := js.Stream(context.Background(), stream.Notices)
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(context.Background(), stream.NoticeSubject(id))
		return err == nil && m.Header.Get(stream.MarkerHeader) != "" // only the marker is left
	})
	if again := r.Do("POST", "/v1/notices", "platform:examplenet", n); again.Status != http.StatusOK || again.Map()["id"] != id {
		t.Fatalf("same body after expiry: %s", again)
	}
	n["suspicion"] = "another text"
	if c := r.Do("POST", "/v1/notices", "platform:examplenet", n); c.Status != http.StatusConflict {
		t.Fatalf("other body after expiry: %s", c)
	}
	time.Sleep(300 * time.Millisecond)
	if more := r.Inbox("at-police", 10); len(more) != 0 {
		t.Fatalf("routed again: %+v", more)
	}
}
