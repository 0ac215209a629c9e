package stagetest_test

import (
	"context"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// TestLog: a Log answers as a stream's leader does: Last is the last
// message on a subject, Next the first at or after a sequence whose
// subject matches a filter with NATS wildcards, NotFound past the end; a
// message id stored before is fault.Exists.
func TestLog(t *testing.T) {
	ctx := context.Background()
	l := stagetest.NewLog(stream.Message{Subject: "a.1.x", ID: "1", Data: []byte("1")},
		stream.Message{Subject: "a.2.x", ID: "2", Data: []byte("2")},
		stream.Message{Subject: "a.1.x.y", ID: "3", Data: []byte("3")})
	errs := l.PublishAll(ctx, []stream.Message{{Subject: "a.1.x", ID: "4", Data: []byte("4")}, {Subject: "a.3.x", ID: "2"}})
	if errs[0] != nil || !fault.Is(errs[1], fault.Exists) {
		t.Fatalf("publish: %v", errs)
	}
	if m, err := l.Last(ctx, "a.1.x"); err != nil || string(m.Data) != "4" || m.Sequence != 4 {
		t.Errorf("last: %v %v", m, err)
	}
	if _, err := l.Last(ctx, "a.3.x"); !fault.Is(err, fault.NotFound) {
		t.Errorf("last of nothing: %v", err)
	}
	var got string
	for seq := uint64(0); ; {
		m, err := l.Next(ctx, seq, "a.*.x")
		if fault.Is(err, fault.NotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, seq = got+string(m.Data), m.Sequence+1
	}
	if got != "124" {
		t.Errorf("next over a.*.x: %q, want 124", got)
	}
	if m, err := l.Next(ctx, 2, "a.>"); err != nil || string(m.Data) != "2" {
		t.Errorf("next over a.>: %v %v", m, err)
	}
	l.Errs["a.>"] = fault.Errorf("test", fault.Unavailable, "down")
	if _, err := l.Next(ctx, 1, "a.>"); !fault.Is(err, fault.Unavailable) {
		t.Errorf("failing read: %v", err)
	}
}
