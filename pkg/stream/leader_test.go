package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// TestLeaderReader: the leader's answers are those of a direct get: the
// last message on a subject with its headers, the next one matching a
// filter, and NotFound past the end; and the request goes to the leader's
// API, not to the direct get any replica answers.
func TestLeaderReader(t *testing.T) {
	js := startJS(t, stream.Topology{Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := stream.Publish(ctx, js, event(i, fmt.Sprintf("leader-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Every request the reader sends is seen here too (core NATS hands a
	// request to every subscriber).
	asked, err := js.Conn().SubscribeSync("$JS.API.STREAM.MSG.GET." + stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := js.Conn().SubscribeSync("$JS.API.DIRECT.GET.>")
	if err != nil {
		t.Fatal(err)
	}
	r := stream.NewLeaderReader(js, stream.Events)

	last, err := r.Last(ctx, event(1, "").Subject)
	if err != nil || string(last.Data) != `{"i":1}` || last.Header.Get(nats.MsgIdHdr) != "leader-1" {
		t.Fatalf("Last: %v %+v", err, last)
	}
	var seen []string
	for seq := uint64(1); ; {
		m, err := r.Next(ctx, seq, stream.EventSubject("*", "accepted"))
		if fault.Is(err, fault.NotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(m.Data))
		seq = m.Sequence + 1
	}
	if len(seen) != 3 || seen[0] != `{"i":0}` || seen[2] != `{"i":2}` {
		t.Fatalf("Next saw %q", seen)
	}
	if _, err := r.Last(ctx, event(9, "").Subject); !fault.Is(err, fault.NotFound) {
		t.Fatalf("Last of an empty subject: %v, want NotFound", err)
	}
	if n, _, _ := asked.Pending(); n != 6 {
		t.Errorf("%d requests to the leader's API, want 6", n)
	}
	if n, _, _ := direct.Pending(); n != 0 {
		t.Errorf("%d direct gets, want none", n)
	}
}
