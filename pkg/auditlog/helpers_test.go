package auditlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

const origin = "test.example/noticerelay"

// startNATS starts an embedded server with the relay's streams.
func startNATS(t testing.TB) jetstream.JetStream {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{DataDir: t.TempDir(), DefaultSync: true})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); srv.Shutdown() })
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, js, stream.Topology{Replicas: 1, Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return js
}

// keys makes a signing key and returns it with its verifier key.
func keys(t testing.TB) (skey, vkey string) {
	t.Helper()
	path, vkey, err := auditlog.GenerateKeys(t.TempDir(), origin)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), vkey
}

var base = time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)

// events returns the canonical events of notices [from, to): five each
// (accepted, decided, queued, delivered, acknowledged), as the relay
// encodes them.
func events(t testing.TB, from, to int) []stream.Message {
	t.Helper()
	var out []stream.Message
	for n := from; n < to; n++ {
		b := event.Event{Notice: fmt.Sprintf("%032x", n), Platform: "examplenet",
			BodySHA256: fmt.Sprintf("%064x", n*7919), Priority: []string{"normal", "urgent"}[n%2]}
		t0 := base.Add(time.Duration(n) * time.Minute)
		for k, typ := range []event.Type{event.Accepted, event.Decided, event.Queued, event.Delivered, event.Acknowledged} {
			e := b
			e.Type, e.Time, e.Actor = typ, t0.Add(time.Duration(k*k)*time.Second), "routing"
			if k >= 2 {
				e.Recipient, e.Kind, e.Delivery = "de-bka", event.KindNotice, fmt.Sprintf("d-%d", n)
			}
			m, err := e.Message()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

// publish stores the events of notices [from, to) in order.
func publish(t testing.TB, js jetstream.JetStream, from, to int) {
	t.Helper()
	ms := events(t, from, to)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < len(ms); i += 1000 {
		if err := stream.FirstError(stream.Direct{JS: js}.PublishAll(ctx, ms[i:min(i+1000, len(ms))])); err != nil {
			t.Fatal(err)
		}
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// copyDir copies an export folder.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
