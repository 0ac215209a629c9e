package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// An authority that consumes its queue from NATS directly gets its ack
// there recorded as its receipt: the status reaches acknowledged without
// any HTTP call, and survives a restart.
func TestNATSAckIsAReceipt(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		for i := range c.Authorities {
			if c.Authorities[i].ID == "fr-police" {
				c.Authorities[i].Delivery.Mode = config.ModeNATS
			}
		}
	}})
	id := r.Submit("examplenet", relaytest.Notice("NATS-ACK-1", false, "FR", "", ""))
	js, err := jetstream.New(r.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cons, err := js.Consumer(ctx, "NR_DELIVERIES", delivery.ConsumerName("fr-police", "normal"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Fatalf("fetched %d deliveries, want 1 (%v)", n, batch.Error())
	}
	relaytest.Eventually(t, wait, "receipt from the NATS ack", func() bool {
		return r.Status("examplenet", id)["status"] == "acknowledged"
	})
	r.Restart()
	st := r.Status("examplenet", id)
	rc := st["recipients"].([]any)[0].(map[string]any)
	if st["status"] != "acknowledged" || rc["delivered_at"] == nil || rc["acknowledged_at"] == nil {
		t.Fatalf("after restart: %v", st)
	}
}
