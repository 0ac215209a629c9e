package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/message"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
	"github.com/noticerelay/noticerelay/services/status"
)

// TestFollowersResume breaks what the portal's index follows (the
// message_sent events, NR_PORTAL_READ and NR_STATUS) three ways: each
// subscription ended under it (as an iterator or watcher that stops with
// an error), every consumer deleted on the server, and the NATS server
// restarted. After each, a new message, read mark and notice must show in
// the unread counts and the list; and the followers stop with the service.
func TestFollowersResume(t *testing.T) {
	dir := t.TempDir()
	srv, err := embedded.Start(embedded.Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	t.Cleanup(func() { srv.Stop() })
	nc, err := nats.Connect("nats://"+addr, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := stream.Ensure(ctx, js, stream.Topology{Replicas: 1, Retention: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	env := &module.Env{Config: &config.Config{Retention: config.Retention{Notices: config.Duration(24 * time.Hour)}},
		NC: nc, JS: js, Log: zaptest.NewLogger(t), Now: time.Now,
		Pseudonyms: event.NewPseudonyms(make([]byte, event.PseudonymKeySize))}
	var wg sync.WaitGroup
	ix, err := startIndex(ctx, env, &wg)
	if err != nil {
		t.Fatal(err)
	}
	<-ix.ready
	statusKV, err := js.KeyValue(ctx, stream.StatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	const platform, id = "examplenet", "0d9e6d1c-5a3e-4a51-9c4e-2a7b1f0c7e11"
	ps := env.Pseudonyms.Notice(id)

	// Each round writes, as other processes would, one notice to the
	// status projection, one message from de-bka about notice id, and the
	// read mark of the message of the round before.
	var msgs []string
	round := func(n int) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		nid := id
		if n > 0 {
			nid = fmt.Sprintf("0d9e6d1c-5a3e-4a51-9c4e-2a7b1f0c7e%02d", 20+n)
		}
		p, _ := json.Marshal(status.Projection{ID: nid, Platform: platform, Reference: fmt.Sprint("ref-", n),
			ReceivedAt: time.Now().UTC().Format(time.RFC3339Nano)})
		mid := fmt.Sprint("msg-", n)
		ev := &event.Event{Type: event.MessageSent, Notice: ps, Time: time.Now(), Actor: "de-bka", Platform: platform,
			Recipient: message.Platform, Kind: event.KindMessage, MessageID: mid, Sender: "de-bka"}
		m, err := ev.Message()
		if err != nil {
			t.Fatal(err)
		}
		for {
			// The server may be starting again: try until it answers.
			_, err = statusKV.Put(wctx, nid, p)
			if err == nil {
				_, err = stream.Publish(wctx, js, m)
			}
			if err == nil && len(msgs) > 0 {
				seen, _ := json.Marshal(marks{Read: msgs})
				_, err = ix.reads.Put(wctx, readKey(platform, id), seen)
			}
			if err == nil {
				break
			}
			if wctx.Err() != nil {
				t.Fatalf("round %d: writing: %v", n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		msgs = append(msgs, mid)
	}
	// seen waits until the index shows n+1 notices and, on notice id, the
	// one message of round n unread.
	seen := func(n int, after string) {
		t.Helper()
		var rows, unread int
		for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			rows, unread = len(ix.list(platform)), ix.unread(platform, id, ps)
			if rows == n+1 && unread == 1 {
				t.Logf("after %s: seen in %v", after, time.Since(end.Add(-60*time.Second)).Round(time.Millisecond))
				return
			}
		}
		t.Fatalf("after %s: %d notices listed and %d unread, want %d and 1", after, rows, unread, n+1)
	}
	round(0)
	seen(0, "the start")

	for _, f := range ix.followers {
		f.interrupt()
	}
	round(1)
	seen(1, "each subscription ended")

	st, err := js.Stream(ctx, stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{stream.Events, "KV_" + stream.StatusBucket, "KV_" + stream.ReadBucket} {
		if st, err = js.Stream(ctx, name); err != nil {
			t.Fatal(err)
		}
		names := st.ConsumerNames(ctx)
		for c := range names.Name() {
			if err := st.DeleteConsumer(ctx, c); err != nil {
				t.Fatalf("deleting consumer %s of %s: %v", c, name, err)
			}
		}
		if err := names.Err(); err != nil {
			t.Fatal(err)
		}
	}
	round(2)
	seen(2, "every consumer deleted")

	srv.Stop()
	if srv, err = embedded.Start(embedded.Options{DataDir: dir, Listen: addr}); err != nil {
		t.Fatal(err)
	}
	round(3)
	seen(3, "a restart of the NATS server")

	cancel()
	wg.Wait()
	resumed := 0
	for _, f := range ix.followers {
		switch f := f.(type) {
		case *follower[jetstream.Msg]:
			resumed += f.resumed
		case *follower[jetstream.KeyValueEntry]:
			resumed += f.resumed
		}
	}
	if resumed < len(ix.followers) {
		t.Errorf("%d subscriptions opened again for %d followers", resumed, len(ix.followers))
	}
}
