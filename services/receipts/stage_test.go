package receipts

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// TestReceiptMapping: an ack advisory names a delivery by its sequence;
// the stage maps it to that delivery's delivered and acknowledged events
// for the authority its subject names, at the advisory's time. A delivery
// past retention gives nothing; other read failures are retried.
func TestReceiptMapping(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := New(stagetest.Env(t, &now, nil))
	d := delivery.Delivery{V: delivery.Version, ID: "d-1", NoticeID: "n-1", Type: event.KindNotice, Priority: "urgent",
		Platform: stagetest.Platform, BodySHA256: "sum"}
	data, _ := json.Marshal(d)
	stored := map[uint64]*jetstream.RawStreamMsg{7: {Subject: stream.DeliverySubject("de-bka", "urgent", "d-1"), Data: data},
		8: {Subject: "nr.elsewhere", Data: data}}
	var readErr error
	s.stored = func(_ context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
		if readErr != nil {
			return nil, readErr
		}
		if m, ok := stored[seq]; ok {
			return m, nil
		}
		return nil, jetstream.ErrMsgNotFound
	}
	acked := now.Add(-time.Minute)
	advisory := func(seq uint64) stream.Input {
		b, _ := json.Marshal(ackAdvisory{Stream: stream.Deliveries, Consumer: "c", StreamSeq: seq, Time: acked})
		return stream.Input{Subject: "advisory", Data: b}
	}
	ctx := context.Background()
	out, err := s.stage(ctx, advisory(7))
	if err != nil {
		t.Fatal(err)
	}
	evs := stagetest.Events(t, out)
	if len(evs) != 2 || evs[0].Type != event.Delivered || evs[1].Type != event.Acknowledged {
		t.Fatalf("events %+v", evs)
	}
	for _, e := range evs {
		if e.Recipient != "de-bka" || e.Delivery != "d-1" || e.Actor != Name || !e.Time.Equal(acked) ||
			e.Notice != s.env.Pseudonyms.Notice("n-1") {
			t.Errorf("event %+v", e)
		}
	}
	if out, err := s.stage(ctx, advisory(9)); err != nil || out != nil {
		t.Errorf("past retention: %v, %d outputs", err, len(out))
	}
	for _, in := range []stream.Input{advisory(8), {Data: []byte("{}")}} {
		if _, err := s.stage(ctx, in); !fault.Is(err, fault.Poison) {
			t.Errorf("%s: %v", in.Data, err)
		}
	}
	readErr = jetstream.ErrNoStreamResponse
	if _, err := s.stage(ctx, advisory(7)); !fault.Is(err, fault.Unavailable) {
		t.Errorf("store unavailable: %v", err)
	}
}
