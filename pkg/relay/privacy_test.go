package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// markedNotice has a unique marker in every free-text or identifying field.
func markedNotice(ref string) (map[string]any, []string) {
	var markers []string
	mk := func(field string) string {
		m := "MARK" + strings.ToUpper(strings.NewReplacer("_", "", ".", "").Replace(field)) + "X"
		markers = append(markers, m)
		return m
	}
	n := map[string]any{
		"reference":       ref,
		"category":        "grooming",
		"imminent_threat": true,
		"urgency_reason":  mk("urgency_reason"),
		"suspicion":       mk("suspicion"),
		"locations":       []any{map[string]any{"country": "DE", "description": mk("loc.description")}},
		"suspects": []any{map[string]any{"country": "AT", "account_id": mk("account_id"), "username": mk("username"),
			"profile_url": "https://example.net/" + mk("profile_url"), "phone": "+43 660 1234567",
			"ip_addresses": []any{map[string]any{"ip": "198.51.100.77", "port": 443}}}},
		"victims": []any{map[string]any{"country": "FR", "minor": true, "username": mk("victim_username")}},
		"content": []any{map[string]any{"url": "https://example.net/c/" + mk("content_url"), "type": "text"}},
		"contact": map[string]any{"name": mk("contact_name"), "email": "desk@example.net", "phone": "+353 1 555 0100"},
	}
	markers = append(markers, "198.51.100.77", "1234567", "555 0100", "desk@example.net", ref)
	return n, markers
}

// markedLife takes a marked notice through its whole life: submitted,
// delivered to and acknowledged by its three recipients, withdrawn. It
// returns the notice id and every marker, the id and reason included.
func markedLife(t *testing.T, r *relaytest.Relay, ref string) (string, []string) {
	t.Helper()
	n, markers := markedNotice(ref)
	id := r.Submit("examplenet", n)
	for _, a := range []string{"de-bka", "at-police", "fr-police"} {
		ds := r.InboxUntil(a, 1, wait)
		r.Ack(a, ds[0].ID)
	}
	r.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:examplenet", map[string]string{"reason": "MARKREASONX"})
	relaytest.Eventually(t, wait, "withdrawn", func() bool { return r.Status("examplenet", id)["status"] == "withdrawn" })
	// The whole life: the withdrawn event comes before the queued events
	// of the three withdrawal deliveries.
	relaytest.Eventually(t, wait, "three withdrawal deliveries queued", func() bool {
		return r.Events("nr.event.*.queued.*.withdrawal") == 3
	})
	return id, append(markers, id, "MARKREASONX")
}

// No lifecycle event holds any value from a notice body, nor its id or
// reference: every marker is absent from the events stream, byte for byte.
func TestEventsHoldNoPersonalData(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	_, markers := markedLife(t, r, "PRIVACY-REF-77")
	// A rejected submission with markers, too.
	bad, _ := markedNotice("PRIVACY-REF-78")
	bad["category"] = "MARKBADCATEGORYX"
	if resp := r.Do("POST", "/v1/notices", "platform:examplenet", bad); resp.Status != http.StatusBadRequest {
		t.Fatal(resp)
	}
	markers = append(markers, "MARKBADCATEGORYX", "PRIVACY-REF-78")

	var all string
	var count int
	// Rejections are recorded once their window ends.
	relaytest.Eventually(t, 10*time.Second, "the rejected event", func() bool {
		all, count = allEvents(t, r)
		return strings.Contains(all, `"type":"rejected"`)
	})
	if count < 10 {
		t.Fatalf("only %d events", count)
	}
	for _, m := range markers {
		if strings.Contains(all, m) {
			t.Errorf("events contain %q", m)
		}
	}
	for _, typ := range []string{"accepted", "rejected", "decided", "queued", "delivered", "acknowledged", "withdrawn"} {
		if !strings.Contains(all, `"type":"`+typ+`"`) {
			t.Errorf("no %s event", typ)
		}
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	cases := []struct {
		name, method, path, who string
		body                    any
		want                    int
	}{
		{"no token", "POST", "/v1/notices", "", relaytest.Notice("B-1", false, "AT", "", ""), 401},
		{"unknown token", "POST", "/v1/notices", "nope-nope-nope-nope", relaytest.Notice("B-1", false, "AT", "", ""), 401},
		{"too large", "POST", "/v1/notices", "platform:examplenet", `{"reference":"B-2","suspicion":"` + strings.Repeat("a", 1<<20) + `"}`, 413},
		{"not json", "POST", "/v1/notices", "platform:examplenet", `reference=B-3`, 400},
		{"empty", "POST", "/v1/notices", "platform:examplenet", ``, 400},
		{"array", "POST", "/v1/notices", "platform:examplenet", `[]`, 400},
		{"max 0", "GET", "/v1/inbox?max=0", "authority:de-bka", nil, 400},
		{"max 101", "GET", "/v1/inbox?max=101", "authority:de-bka", nil, 400},
		{"max text", "GET", "/v1/inbox?max=ten", "authority:de-bka", nil, 400},
		{"status bad id", "GET", "/v1/notices/not-a-uuid", "platform:examplenet", nil, 404},
		{"status unknown id", "GET", "/v1/notices/6f1f6d0e-5b7a-4c1e-9a55-2f0c3d6e8b21", "platform:examplenet", nil, 404},
		{"ack bad id", "POST", "/v1/inbox/zzz/ack", "authority:de-bka", nil, 404},
		{"bulk ack not json", "POST", "/v1/inbox/ack", "authority:de-bka", `{"ids":`, 400},
		{"bulk ack too many", "POST", "/v1/inbox/ack", "authority:de-bka", map[string]any{"ids": make([]string, 101)}, 400},
		{"bulk ack unknown field", "POST", "/v1/inbox/ack", "authority:de-bka", `{"idz":["a"]}`, 400},
		{"withdraw unknown", "POST", "/v1/notices/6f1f6d0e-5b7a-4c1e-9a55-2f0c3d6e8b21/withdraw", "platform:examplenet", map[string]string{"reason": "x"}, 404},
		{"withdraw bad body", "POST", "/v1/notices/6f1f6d0e-5b7a-4c1e-9a55-2f0c3d6e8b21/withdraw", "platform:examplenet", `{"reason":1}`, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := r.Do(c.method, c.path, c.who, c.body)
			if resp.Status != c.want {
				t.Fatalf("want %d, got %s", c.want, resp)
			}
			if c.want >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	// Nothing was stored: no notice, no delivery anywhere.
	time.Sleep(100 * time.Millisecond)
	for _, a := range relaytest.Authorities {
		if ds := r.Inbox(a, 100); len(ds) != 0 {
			t.Errorf("%s got %v", a, ds)
		}
	}
	js, _ := jetstream.New(r.Conn())
	s, err := js.Stream(context.Background(), stream.Notices)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(context.Background()); info.State.Msgs != 0 {
		t.Errorf("%d notices stored after bad requests", info.State.Msgs)
	}
}

// A full notice store answers 503 with Retry-After and stores nothing more;
// what was accepted before is still delivered.
func TestFullStoreAnswers503(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) { c.Limits.NoticeStoreBytes = 8 << 10 }})
	accepted := 0
	var last *relaytest.Response
	for i := range 50 {
		last = r.Do("POST", "/v1/notices", "platform:examplenet", relaytest.Notice(fmt.Sprintf("FULL-%d", i), false, "AT", "", ""))
		if last.Status != http.StatusAccepted {
			break
		}
		accepted++
	}
	if last.Status != http.StatusServiceUnavailable || last.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d accepted: %s", accepted, last)
	}
	if accepted == 0 {
		t.Fatal("nothing accepted")
	}
	r.InboxUntil("at-police", accepted, wait)
}
