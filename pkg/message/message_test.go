package message_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/message"
)

func names(errs []httpapi.FieldError) string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return strings.Join(out, ",")
}

func TestChecks(t *testing.T) {
	const id = "6f1f6d0e-5b7a-4c1e-9a55-2f0c3d6e8b21"
	tests := []struct {
		name string
		errs []httpapi.FieldError
		want string
	}{
		{"authority ok", (&message.AuthorityRequest{Kind: "feedback", Text: "Thanks.", InReplyTo: id}).Check(), ""},
		{"authority all wrong", (&message.AuthorityRequest{Kind: "Feedback", Text: "  ", InReplyTo: strings.ToUpper(id)}).Check(), "kind,text,in_reply_to"},
		{"10000 characters", (&message.AuthorityRequest{Kind: "other", Text: strings.Repeat("ü", 10000)}).Check(), ""},
		{"10001 characters", (&message.AuthorityRequest{Kind: "other", Text: strings.Repeat("a", 10001)}).Check(), "text"},
		{"invalid UTF-8", (&message.AuthorityRequest{Kind: "other", Text: "a\xffb"}).Check(), "text"},
		{"platform ok", (&message.PlatformRequest{To: "de-bka", Text: "Preserved."}).Check(), ""},
		{"platform without to", (&message.PlatformRequest{Text: "x"}).Check(), "to"},
		{"key ok", message.CheckIdempotencyKey("client-42:attempt"), ""},
		{"key empty", message.CheckIdempotencyKey(""), "Idempotency-Key"},
		{"key with space", message.CheckIdempotencyKey("a b"), "Idempotency-Key"},
		{"key too long", message.CheckIdempotencyKey(strings.Repeat("k", 201)), "Idempotency-Key"},
	}
	for _, tt := range tests {
		if got := names(tt.errs); got != tt.want {
			t.Errorf("%s: fields %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A message shows in_reply_to as null when it answers none; its events
// name it by id, kind, sender and recipient, never by its text.
func TestOutAndEvent(t *testing.T) {
	rec := &message.Record{V: message.Version, ID: "m1", NoticeID: "n1", Platform: "examplenet", Authority: "de-bka",
		From: "de-bka", To: message.Platform, Kind: "preservation_request", Text: "SECRET-TEXT", SentAt: "2026-12-01T10:00:00.000Z",
		Priority: "normal"}
	out, _ := json.Marshal(rec.Out())
	if !strings.Contains(string(out), `"in_reply_to":null`) {
		t.Errorf("out: %s", out)
	}
	ev := rec.Event(event.NewPseudonyms([]byte("k")), event.MessageSent, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	m, err := ev.Message()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Data), "SECRET-TEXT") || !strings.HasSuffix(m.Subject, ".message_sent.platform.message.m1") ||
		!strings.Contains(string(m.Data), `"sender":"de-bka"`) || !strings.Contains(string(m.Data), `"message_kind":"preservation_request"`) {
		t.Errorf("event %s: %s", m.Subject, m.Data)
	}
}
