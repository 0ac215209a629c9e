package relay_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// storedRecord reads the record intake stored for notice id (nil when there
// is none).
func storedRecord(t *testing.T, r *relaytest.Relay, id string) *notice.Record {
	t.Helper()
	js, err := jetstream.New(r.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := stream.Get(ctx, mustStream(t, js), stream.NoticeSubject(id))
	if err != nil {
		return nil
	}
	rec, _, err := notice.DecodeRecord(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func mustStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(context.Background(), stream.Notices)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answerWarnings returns the fields of the warnings of an answer.
func answerWarnings(t *testing.T, resp *relaytest.Response) []string {
	t.Helper()
	var a struct {
		Warnings []notice.Warning `json:"warnings"`
	}
	if err := resp.JSON(&a); err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, w := range a.Warnings {
		if w.Message == "" {
			t.Errorf("warning at %s without a message", w.Field)
		}
		out = append(out, w.Field)
	}
	return out
}

func errorFields(t *testing.T, resp *relaytest.Response) []string {
	t.Helper()
	var p struct {
		Errors []notice.FieldError `json:"errors"`
	}
	if err := resp.JSON(&p); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// TestWarnings: a valid notice that is hard to act on is accepted with
// warnings, the same on a repeat (200); a notice with nothing to say has
// none.
func TestWarnings(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	n := relaytest.Notice("WARN-1", true, "", "", "")
	n["occurred_at"] = "2099-01-01T00:00:00Z"
	n["suspects"] = []map[string]any{{"ip_addresses": []map[string]any{{"ip": "203.0.113.7", "possible_proxy": true}}}}
	want := []string{"urgency_reason", "contact", "occurred_at",
		"suspects[0].ip_addresses[0].port", "suspects[0].ip_addresses[0].seen_at", "locations"}
	first := r.Do("POST", "/v1/notices", "platform:examplenet", n)
	if first.Status != http.StatusAccepted {
		t.Fatal(first)
	}
	if got := answerWarnings(t, first); !slices.Equal(got, want) {
		t.Errorf("202 warnings at %q, want %q: %s", got, want, first)
	}
	again := r.Do("POST", "/v1/notices", "platform:examplenet", n)
	if again.Status != http.StatusOK || !slices.Equal(answerWarnings(t, again), want) {
		t.Errorf("200: %s", again)
	}
	// Nothing hard to act on: no warnings field at all.
	ok := relaytest.Notice("WARN-2", true, "AT", "", "")
	ok["urgency_reason"] = "tonight"
	ok["contact"] = map[string]any{"email": "lea@example.net"}
	resp := r.Do("POST", "/v1/notices", "platform:examplenet", ok)
	if resp.Status != http.StatusAccepted || strings.Contains(string(resp.Body), "warnings") {
		t.Errorf("no warnings expected: %s", resp)
	}
	// The warned notice is routed all the same (to the fallback: IE).
	r.InboxUntil("ie-garda", 1, wait)
}

// TestFollowUpsResolveReferences: follow_up_of and supersedes name earlier
// notices of the same platform; intake stores their ids in the record, and
// refuses, storing nothing, a reference the platform never submitted.
func TestFollowUpsResolveReferences(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	earlier := r.Submit("examplenet", relaytest.Notice("CASE-1", false, "AT", "", ""))
	corrected := r.Submit("examplenet", relaytest.Notice("CASE-2", false, "DE", "", ""))

	fu := relaytest.Notice("CASE-3", false, "FR", "", "")
	fu["follow_up_of"] = "CASE-1"
	fu["supersedes"] = "CASE-2"
	fu["related_references"] = []string{"CASE-0", "NEVER-SENT"}
	fu["prior_reports"] = []map[string]any{{"recipient": "NCMEC", "id": "CT-123456"}}
	id := r.Submit("examplenet", fu)
	rec := storedRecord(t, r, id)
	if rec == nil || rec.FollowUpOfID != earlier || rec.SupersedesID != corrected {
		t.Fatalf("stored record %+v, want follow_up_of_id %s and supersedes_id %s", rec, earlier, corrected)
	}
	if !strings.Contains(string(rec.Notice), `"follow_up_of":"CASE-1","supersedes":"CASE-2","related_references":["CASE-0","NEVER-SENT"]`) {
		t.Errorf("stored notice %s", rec.Notice)
	}
	// A retry of the follow-up: 200, the same id.
	if again := r.Do("POST", "/v1/notices", "platform:examplenet", fu); again.Status != http.StatusOK || again.Map()["id"] != id {
		t.Errorf("retry: %s", again)
	}

	// Unknown references: 400 naming both fields, nothing stored, a
	// rejection recorded with reason codes only.
	bad := relaytest.Notice("CASE-4", false, "FR", "", "")
	bad["follow_up_of"] = "NO-SUCH-1"
	bad["supersedes"] = "NO-SUCH-2"
	resp := r.Do("POST", "/v1/notices", "platform:examplenet", bad)
	if resp.Status != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!slices.Equal(errorFields(t, resp), []string{"follow_up_of", "supersedes"}) {
		t.Fatalf("unknown references: %s", resp)
	}
	if rec := storedRecord(t, r, notice.ID("examplenet", "CASE-4")); rec != nil {
		t.Errorf("a refused follow-up was stored: %+v", rec)
	}
	// Another platform's reference is unknown to this one.
	other := relaytest.Notice("CASE-1", false, "FR", "", "")
	other["follow_up_of"] = "CASE-2"
	if resp := r.Do("POST", "/v1/notices", "platform:othernet", other); resp.Status != http.StatusBadRequest ||
		!slices.Equal(errorFields(t, resp), []string{"follow_up_of"}) {
		t.Fatalf("another platform's reference: %s", resp)
	}
	// A notice cannot follow up on itself.
	self := relaytest.Notice("CASE-5", false, "FR", "", "")
	self["supersedes"] = "CASE-5"
	if resp := r.Do("POST", "/v1/notices", "platform:examplenet", self); resp.Status != http.StatusBadRequest ||
		!slices.Equal(errorFields(t, resp), []string{"supersedes"}) {
		t.Fatalf("superseding itself: %s", resp)
	}
	// Rejections are counted per platform and window (audit.rejection_window,
	// 100 ms in tests) and recorded when the window ends.
	var events string
	relaytest.Eventually(t, 10*time.Second, "the rejections recorded", func() bool {
		events, _ = allEvents(t, r)
		return strings.Contains(events, "invalid:follow_up_of") && strings.Contains(events, "invalid:supersedes")
	})
	if strings.Contains(events, "NO-SUCH") {
		t.Error("a rejected reference appears in the events")
	}
}

// TestFollowUpOfAnExpiredNotice: a notice whose body has expired is still
// known (its subject keeps a marker), so a late follow-up is accepted.
func TestFollowUpOfAnExpiredNotice(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Retention.Notices = config.Duration(2 * time.Second)
	}})
	earlier := r.Submit("examplenet", relaytest.Notice("OLD-1", false, "AT", "", ""))
	relaytest.Eventually(t, wait, "the body to expire", func() bool { return storedRecord(t, r, earlier) == nil })
	fu := relaytest.Notice("OLD-2", false, "AT", "", "")
	fu["follow_up_of"] = "OLD-1"
	id := r.Submit("examplenet", fu)
	if rec := storedRecord(t, r, id); rec == nil || rec.FollowUpOfID != earlier {
		t.Fatalf("stored record %+v", rec)
	}
}
