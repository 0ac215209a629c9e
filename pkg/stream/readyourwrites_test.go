package stream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// TestReadYourWritesOnCluster: on a three-node cluster, a write that the
// stream acknowledged is found at once through every node, also by
// clients whose direct gets a replica answers that has not applied it yet;
// a subject with nothing on it is still NotFound, confirmed by the
// leader; a message found directly costs no second request. The test
// counts how often a plain direct get missed such a write (it may be
// none on a quiet machine: the lag is real but short).
func TestReadYourWritesOnCluster(t *testing.T) {
	c, err := embedded.StartCluster(embedded.ClusterOptions{DataDir: t.TempDir(), DefaultSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var jss []jetstream.JetStream
	for i := range 3 {
		jss = append(jss, relaytest.JetStream(t)(c.Node(i).Connect(fmt.Sprintf("ryw-%d", i))))
	}
	if err := stream.Ensure(ctx, jss[0], stream.Topology{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	var raws, sures []jetstream.Stream
	for _, js := range jss {
		s, err := js.Stream(ctx, stream.Events)
		if err != nil {
			t.Fatal(err)
		}
		raws, sures = append(raws, s), append(sures, stream.ReadYourWrites(s, js))
	}
	if sures[0] == raws[0] {
		t.Fatal("an R3 stream was not wrapped")
	}

	const n = 300
	missed := 0
	for i := range n {
		m := event(i, fmt.Sprintf("ryw-%d", i))
		if _, err := stream.Publish(ctx, jss[i%3], m); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if _, err := raws[j].GetLastMsgForSubject(ctx, m.Subject); errors.Is(err, jetstream.ErrMsgNotFound) {
				missed++
			}
		}
		for j := range 3 {
			if _, err := stream.Get(ctx, sures[j], m.Subject); err != nil {
				t.Fatalf("write %d through node %d: %v", i, j, err)
			}
		}
	}
	t.Logf("plain direct gets that missed an acknowledged write: %d of %d", missed, 3*n)

	// Found directly: no request to the leader; not found: one, and still
	// NotFound.
	asked, err := jss[1].Conn().SubscribeSync("$JS.API.STREAM.MSG.GET." + stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	if err := jss[1].Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Get(ctx, sures[1], event(0, "").Subject); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Get(ctx, sures[1], event(n+1, "").Subject); !fault.Is(err, fault.NotFound) {
		t.Fatalf("a subject never written: %v, want NotFound", err)
	}
	if got, _, _ := asked.Pending(); got != 1 {
		t.Errorf("%d requests to the leader, want 1 (for the subject never written)", got)
	}
}

// TestReadYourWritesSingleServer: one server is its own leader: the
// stream is returned as it is and never asked twice.
func TestReadYourWritesSingleServer(t *testing.T) {
	js := startJS(t, stream.Topology{Replicas: 1})
	s, err := js.Stream(context.Background(), stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.ReadYourWrites(s, js); got != s {
		t.Fatalf("an R1 stream was wrapped: %T", got)
	}
}
