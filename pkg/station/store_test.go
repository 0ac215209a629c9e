package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func body(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const nid = "6f1f6d0e-5b7a-4c1e-9a55-2f0c3d6e8b21"

func noticeBody(t *testing.T, withdrawal map[string]string) json.RawMessage {
	n := map[string]any{"id": nid, "platform": "examplenet", "received_at": "2026-11-20T14:05:00Z",
		"reference": "R-1", "category": "grooming", "imminent_threat": true, "suspicion": "s",
		"suspects": []map[string]any{{"country": "DE"}}, "victims": []map[string]any{{"country": "AT"}},
		"grounds": []map[string]any{{"basis": "suspect", "evidence": "declared"}}, "co_recipients": []any{}}
	if withdrawal != nil {
		n["withdrawal"] = withdrawal
	}
	return body(t, n)
}

func TestStoreIsIdempotentPerDelivery(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	r := Received{ID: "d-1", NoticeID: nid, Type: "notice", Priority: "urgent", Body: noticeBody(t, nil)}
	for i, want := range []bool{true, false} {
		stored, err := s.Store(ctx, r, now)
		if err != nil || stored != want {
			t.Fatalf("store #%d: stored=%v err=%v, want %v", i+1, stored, err, want)
		}
	}
	rows, err := s.Inbox(ctx, Filter{}, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("inbox: %v %v", rows, err)
	}
	if got := strings.Join(rows[0].Countries, ","); got != "AT,DE" || !rows[0].Urgent() || rows[0].Opened {
		t.Fatalf("row: %+v", rows[0])
	}
	if n, _ := s.UrgentUnopened(ctx); n != 1 {
		t.Fatalf("urgent unopened: %d", n)
	}
	if err := s.MarkOpened(ctx, nid, "duty1", now); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.UrgentUnopened(ctx); n != 0 {
		t.Fatalf("urgent unopened after opening: %d", n)
	}
}

// A withdrawal that arrives before its notice (the notice's delivery was
// still leased when the station crashed) creates the notice, which the
// notice delivery then completes; it stays withdrawn.
func TestWithdrawalBeforeNotice(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	w := Received{ID: "d-w", NoticeID: nid, Type: "withdrawal", Priority: "urgent",
		Body: body(t, map[string]any{"id": nid, "platform": "examplenet", "reference": "R-1", "category": "", "imminent_threat": false,
			"suspicion": "", "grounds": []any{}, "co_recipients": []any{}, "withdrawal": map[string]string{"reason": "error", "requested_at": "2026-11-20T15:00:00Z"}})}
	if _, err := s.Store(ctx, w, now); err != nil {
		t.Fatal(err)
	}
	n, err := s.Notice(ctx, nid)
	if err != nil || n.Complete || !n.Withdrawn || n.WithdrawalReason != "error" {
		t.Fatalf("after the withdrawal: %+v %v", n, err)
	}
	if _, err := s.Store(ctx, Received{ID: "d-n", NoticeID: nid, Type: "notice", Priority: "urgent", Body: noticeBody(t, nil)}, now); err != nil {
		t.Fatal(err)
	}
	n, err = s.Notice(ctx, nid)
	if err != nil || !n.Complete || !n.Withdrawn || n.Category != "grooming" || len(n.Deliveries) != 2 {
		t.Fatalf("after the notice: %+v %v", n, err)
	}
}

func TestAccessLogIsAppendOnly(t *testing.T) {
	s, ctx := open(t), context.Background()
	if err := s.Log(ctx, Access{At: time.Now(), User: "duty1", Action: ActionView, Notice: nid}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE access_log SET user_id = 'someone'`, `DELETE FROM access_log`} {
		if _, err := s.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var b strings.Builder
	if err := s.WriteAccessCSV(ctx, &b); err != nil || !strings.Contains(b.String(), ",duty1,view,"+nid+",") {
		t.Fatalf("csv: %v\n%s", err, b.String())
	}
}

func TestTriageRules(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	if _, err := s.Store(ctx, Received{ID: "d-1", NoticeID: nid, Type: "notice", Priority: "normal", Body: noticeBody(t, nil)}, now); err != nil {
		t.Fatal(err)
	}
	users := []string{"duty1", "lead"}
	for _, tc := range []struct {
		t     Triage
		field string
	}{
		{Triage{State: "done"}, "state"},
		{Triage{State: "forwarded"}, "destination"},
		{Triage{State: "closed", Outcome: "  "}, "outcome"},
		{Triage{State: "in_progress", Assignee: "mallory"}, "assignee"},
	} {
		var te *TriageError
		if err := s.SetTriage(ctx, nid, "duty1", tc.t, users, now); !errors.As(err, &te) || te.Field != tc.field {
			t.Fatalf("%+v: %v, want an error about %s", tc.t, err, tc.field)
		}
	}
	if err := s.SetTriage(ctx, nid, "duty1", Triage{State: "closed", Outcome: "no offence", Destination: "dropped", Assignee: "lead"}, users, now); err != nil {
		t.Fatal(err)
	}
	n, _ := s.Notice(ctx, nid)
	if n.Triage != (Triage{State: "closed", Outcome: "no offence", Assignee: "lead"}) {
		t.Fatalf("triage: %+v", n.Triage)
	}
	if err := s.SetTriage(ctx, "no-such", "duty1", Triage{State: "new"}, users, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown notice: %v", err)
	}
}

// A message delivery's body is the message: each is kept under its id,
// with a null in_reply_to read as none.
func TestMessageDeliveries(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	if _, err := s.Store(ctx, Received{ID: "d-1", NoticeID: nid, Type: "notice", Priority: "normal", Body: noticeBody(t, nil)}, now); err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{"first answer", "second answer"} {
		b := body(t, map[string]any{"id": fmt.Sprintf("m-%d", i), "from": "platform", "to": "de-bka", "kind": "other",
			"text": text, "sent_at": "2026-11-20T15:00:00Z", "in_reply_to": nil})
		if _, err := s.Store(ctx, Received{ID: fmt.Sprintf("d-m%d", i), NoticeID: nid, Type: "message", Priority: "normal", Body: b}, now); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Notice(ctx, nid)
	if err != nil || len(n.Messages) != 2 || n.Messages[0].Text != "first answer" || n.Messages[1].Text != "second answer" {
		t.Fatalf("messages: %+v %v", n.Messages, err)
	}
}

// An escalation delivery (another authority did not acknowledge an urgent
// notice in time) brings the whole notice, with who failed to act.
func TestEscalationDelivery(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	var b map[string]any
	if err := json.Unmarshal(noticeBody(t, nil), &b); err != nil {
		t.Fatal(err)
	}
	b["escalation"] = map[string]string{"from": "de-bka", "delivery": "d-x", "queued_at": "2026-11-20T14:05:00Z", "deadline": "2026-11-20T14:20:00Z"}
	if _, err := s.Store(ctx, Received{ID: "d-e", NoticeID: nid, Type: "escalation", Priority: "urgent", Body: body(t, b)}, now); err != nil {
		t.Fatal(err)
	}
	n, err := s.Notice(ctx, nid)
	if err != nil || !n.Complete || n.Escalation == nil || n.Escalation.From != "de-bka" || n.Category != "grooming" {
		t.Fatalf("escalated notice: %+v %v", n, err)
	}
}

// An outgoing message is checked, stored pending, and settled once: the
// page and the sender may both report the relay's answer.
func TestOutgoingMessages(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	if _, err := s.Store(ctx, Received{ID: "d-1", NoticeID: nid, Type: "notice", Priority: "normal", Body: noticeBody(t, nil)}, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kind, text, reply, field string }{
		{"gossip", "x", "", "kind"},
		{"feedback", "  ", "", "text"},
		{"feedback", strings.Repeat("a", 10001), "", "text"},
		{"feedback", "x", "no-such-message", "in_reply_to"},
	} {
		var me *MessageError
		if err := s.QueueMessage(ctx, nid, "duty1", "m-bad", tc.kind, tc.text, tc.reply, now); !errors.As(err, &me) || me.Field != tc.field {
			t.Fatalf("%+v: %v, want an error about %s", tc, err, tc.field)
		}
	}
	if err := s.QueueMessage(ctx, "no-such-notice", "duty1", "m-0", "feedback", "x", "", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown notice: %v", err)
	}
	v0, _ := s.ThreadVersion(ctx, nid)
	for _, id := range []string{"m-1", "m-2"} {
		if err := s.QueueMessage(ctx, nid, "duty1", id, "request_information", "Who is u-1?", "", now); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := s.PendingMessages(ctx, "", 10)
	if err != nil || len(pending) != 2 || pending[0].DeliveryID != "d-1" || pending[0].ID != "m-1" {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	if err := s.MessageFailed(ctx, "m-1", "connection refused"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.MessageSent(ctx, "m-1", "r-1", "2026-12-01T10:00:00Z", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MessageRefused(ctx, "m-2", "HTTP 404: no delivery", now); err != nil {
		t.Fatal(err)
	}
	if err := s.MessageSent(ctx, "m-2", "r-2", "2026-12-01T10:00:00Z", now); err != nil {
		t.Fatal(err)
	}
	n, err := s.Notice(ctx, nid)
	if err != nil || len(n.Messages) != 2 || n.Messages[0].Status != MessageSent || n.Messages[0].RelayID != "r-1" ||
		n.Messages[0].Attempts != 2 || n.Messages[1].Status != MessageRefused || n.Messages[1].LastError != "HTTP 404: no delivery" {
		t.Fatalf("messages: %+v %v", n.Messages, err)
	}
	if pending, _ := s.PendingMessages(ctx, "", 10); len(pending) != 0 {
		t.Fatalf("still pending: %+v", pending)
	}
	if v1, _ := s.ThreadVersion(ctx, nid); v1 == v0 {
		t.Fatal("the thread's version did not change")
	}
	// A reply names the relay's id of the message it answers.
	if err := s.QueueMessage(ctx, nid, "duty1", "m-3", "feedback", "Thanks.", "r-1", now); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = s.WriteAccessCSV(ctx, &b)
	if got := strings.Count(b.String(), ",message_sent,"); got != 1 {
		t.Fatalf("%d disclosures logged, want 1:\n%s", got, b.String())
	}
}

// A database of version 1 (messages "queued", never sent) opens as the
// current version, its queued messages pending: the sender then sends them.
func TestMigrationFromVersion1(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild it as version 1 would have left it.
	if _, err := s.db.ExecContext(ctx, `DROP TABLE messages; DROP TABLE attachments; DROP TABLE deliveries; DROP TABLE notices;
		DROP TABLE notes; DROP TABLE access_log; DROP TABLE sessions; DROP TABLE relay; DROP TABLE user_state;`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, schema+`; PRAGMA user_version = 1;
		INSERT INTO messages (id, notice_id, direction, kind, text, user_id, status, at)
		VALUES ('m-old', '`+nid+`', 'out', 'feedback', 'kept', 'duty1', 'queued', '2026-11-20T15:00:00.000000000Z')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("version %d %v", v, err)
	}
	pending, err := s.PendingMessages(ctx, "", 10)
	if err != nil || len(pending) != 1 || pending[0].ID != "m-old" {
		t.Fatalf("pending after the migration: %+v %v", pending, err)
	}
}

// A follow-up names the earlier notice by its id (as the relay sends it):
// the follow-up shows what it follows, and the earlier notice lists it.
func TestFollowUpsLinkBothWays(t *testing.T) {
	s, ctx, now := open(t), context.Background(), time.Now()
	if _, err := s.Store(ctx, Received{ID: "d-1", NoticeID: nid, Type: "notice", Priority: "normal", Body: noticeBody(t, nil)}, now); err != nil {
		t.Fatal(err)
	}
	const later = "0b7e2a44-3c1d-4f7e-8a10-6d2b9c4e5f01"
	var b map[string]any
	if err := json.Unmarshal(noticeBody(t, nil), &b); err != nil {
		t.Fatal(err)
	}
	b["id"], b["reference"], b["follow_up_of"] = later, "R-2", nid
	if _, err := s.Store(ctx, Received{ID: "d-2", NoticeID: later, Type: "notice", Priority: "normal", Body: body(t, b)}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	f, err := s.Notice(ctx, later)
	if err != nil || f.Forwarded.FollowUpOf != nid {
		t.Fatalf("follow-up: follows %q, err %v; want %s", f.Forwarded.FollowUpOf, err, nid)
	}
	e, err := s.Notice(ctx, nid)
	if err != nil || len(e.FollowUps) != 1 || e.FollowUps[0].ID != later || e.FollowUps[0].Reference != "R-2" {
		t.Fatalf("earlier notice's follow-ups: %+v, err %v", e.FollowUps, err)
	}
}
