package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
	"github.com/noticerelay/noticerelay/services/audit"
)

// Issue 10, finding 6: two idle relays on a 3-node cluster keep fewer than
// 10 consumers on the event stream. Before, each audit service's read of
// the log every 2 s left an ordered consumer behind for 5 minutes: about
// 300 consumers at rest.
func TestConsumersAtRestOnCluster(t *testing.T) {
	c := relaytest.Cluster(t)
	o := relaytest.OnCluster(t, c)
	a, b := relaytest.Start(t, o), relaytest.Start(t, o)
	for i := range 20 {
		[]*relaytest.Relay{a, b}[i%2].Submit("examplenet", relaytest.Notice(fmt.Sprintf("ref-%d", i), false, "DE", "", ""))
	}
	nc, err := c.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// count is how many consumers the event stream has; 0 when it does
	// not answer in time (a busy cluster's leader change), as the next
	// count will tell.
	count := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream.Events)
		if err != nil {
			t.Logf("counting consumers: %v", err)
			return 0
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Logf("counting consumers: %v", err)
			return 0
		}
		return info.State.Consumers
	}
	// Light traffic over six of the audit services' reads of the log, so
	// that each reads new leaves, then rest.
	most := 0
	for i := 0; i < int(12*audit.Interval/time.Second); i++ {
		[]*relaytest.Relay{a, b}[i%2].Submit("examplenet", relaytest.Notice(fmt.Sprintf("late-%d", i), false, "FR", "", ""))
		most = max(most, count())
		time.Sleep(500 * time.Millisecond)
	}
	atRest := 0
	for end := time.Now().Add(2 * audit.Interval); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		atRest = max(atRest, count())
	}
	t.Logf("with two relays on %s: at most %d consumers under light traffic, %d at rest", stream.Events, most, atRest)
	if atRest >= 10 || most >= 10 {
		t.Errorf("%d consumers on %s at rest (%d under traffic): log reads leave theirs behind", atRest, stream.Events, most)
	}
}
