package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// startJS runs an embedded server (every write fsynced, as in dev) with the
// relay's streams.
func startJS(t *testing.T, topo stream.Topology) jetstream.JetStream {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	js := relaytest.JetStream(t)(srv.Connect("test"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	return js
}

func event(i int, id string) stream.Message {
	return stream.Message{Subject: stream.EventSubject(fmt.Sprintf("n%05d", i), "accepted"), ID: id,
		Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
}

func count(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// TestGroupCommitAnswersEachCaller: many callers at once, some with one
// message and some with enough to be committed as an atomic batch, share
// the committer; each gets the outcome of each of its own messages, and
// what was stored before is refused for good, message by message, also
// inside a batch of new ones.
func TestGroupCommitAnswersEachCaller(t *testing.T) {
	js := startJS(t, stream.Topology{Replicas: 1, Retention: time.Hour, DedupWindow: 200 * time.Millisecond})
	gc := stream.NewGroupCommit(js, 30*time.Second)
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// 48 single-message callers and 4 callers of 30 messages, at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	n := 0
	call := func(ms []stream.Message) {
		defer wg.Done()
		for i, err := range gc.PublishAll(ctx, ms) {
			if err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %v", ms[i].Subject, err))
				mu.Unlock()
			}
		}
	}
	for range 48 {
		wg.Add(1)
		go call([]stream.Message{event(n, fmt.Sprint("id-", n))})
		n++
	}
	for range 4 {
		var ms []stream.Message
		for range 30 {
			ms = append(ms, event(n, fmt.Sprint("id-", n)))
			n++
		}
		wg.Add(1)
		go call(ms)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("new messages refused: %v", failures)
	}
	if got := count(t, js, stream.Events); got != uint64(n) {
		t.Fatalf("stored %d messages, want %d", got, n)
	}

	// A retry within the duplicate window (same ids) mixed with new
	// messages, 40 in one call so that it goes as an atomic batch first.
	var ms []stream.Message
	for i := range 20 {
		ms = append(ms, event(i*7, fmt.Sprint("id-", i*7))) // stored before
	}
	for range 20 {
		ms = append(ms, event(n, fmt.Sprint("id-", n)))
		n++
	}
	errs := gc.PublishAll(ctx, ms)
	for i, err := range errs {
		if i < 20 && !fault.Is(err, fault.Exists) {
			t.Errorf("retry of %s: %v, want Exists", ms[i].Subject, err)
		}
		if i >= 20 && err != nil {
			t.Errorf("new %s: %v", ms[i].Subject, err)
		}
	}

	// Long after the window, with other ids: the subject still refuses
	// them, and a concurrent caller's new message is unaffected.
	time.Sleep(400 * time.Millisecond)
	wg.Add(2)
	var late, fresh []error
	go func() {
		defer wg.Done()
		var ms []stream.Message
		for i := range 25 {
			ms = append(ms, event(i, fmt.Sprint("other-id-", i)))
		}
		late = gc.PublishAll(ctx, ms)
	}()
	go func() {
		defer wg.Done()
		fresh = gc.PublishAll(ctx, []stream.Message{event(n, fmt.Sprint("id-", n))})
	}()
	wg.Wait()
	n++
	for i, err := range late {
		if !fault.Is(err, fault.Exists) {
			t.Errorf("late repeat of subject %d: %v, want Exists", i, err)
		}
	}
	if fresh[0] != nil {
		t.Errorf("a concurrent new message: %v", fresh[0])
	}
	if got := count(t, js, stream.Events); got != uint64(n) {
		t.Fatalf("stored %d messages, want %d (a repeat was stored twice, or a new one lost)", got, n)
	}
	// Each subject holds the first message written on it.
	s, err := js.Stream(ctx, stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 7, 47, 100, n - 1} {
		m, err := s.GetLastMsgForSubject(ctx, event(i, "").Subject)
		if err != nil {
			t.Fatalf("subject %d: %v", i, err)
		}
		if string(m.Data) != fmt.Sprintf(`{"i":%d}`, i) || m.Header.Get(jetstream.MsgIDHeader) != fmt.Sprint("id-", i) {
			t.Errorf("subject %d holds %s (id %s)", i, m.Data, m.Header.Get(jetstream.MsgIDHeader))
		}
	}
}

// TestPublishAllWithoutCommitter: a plain JetStream context (no group
// commit) gives the same answers.
func TestPublishAllWithoutCommitter(t *testing.T) {
	js := startJS(t, stream.Topology{Replicas: 1, Retention: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ms []stream.Message
	for i := range 30 {
		ms = append(ms, event(i, fmt.Sprint("id-", i)))
	}
	if err := stream.FirstError(stream.Direct{JS: js}.PublishAll(ctx, ms)); err != nil {
		t.Fatal(err)
	}
	for i, err := range (stream.Direct{JS: js}).PublishAll(ctx, append(ms[:10:10], event(30, "id-30"))) {
		if i < 10 && !fault.Is(err, fault.Exists) || i == 10 && err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	if got := count(t, js, stream.Events); got != 31 {
		t.Fatalf("stored %d, want 31", got)
	}
}

// TestGroupCommitFreesAfterItsCallersGiveUp: a publish that is never
// answered (here: nothing but a silent subscriber on the stream's
// subjects, as when a stream leader dies with the publish in flight) holds
// its flush only as long as its callers wait. The next caller is served as
// soon as the stream answers again, not after the committer's 30 s bound
// (the drills' 30 s stall when the NR_NOTICES leader was killed).
func TestGroupCommitFreesAfterItsCallersGiveUp(t *testing.T) {
	srv, err := embedded.Start(embedded.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	js := relaytest.JetStream(t)(srv.Connect("test"))
	nc := js.Conn()
	gc := stream.NewGroupCommit(js, 30*time.Second)
	defer gc.Close()
	notice := func(id string) []stream.Message {
		return []stream.Message{{Subject: stream.NoticeSubject(id), ID: id, Data: []byte(`{}`)}}
	}

	// No stream yet: a silent subscriber takes the publish and never answers.
	silent, err := nc.SubscribeSync(stream.NoticeSubject("*"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = gc.PublishAll(ctx, notice("first"))[0]
	cancel()
	if !fault.Is(err, fault.Unavailable) {
		t.Fatalf("unanswered publish: %v, want fault.Unavailable", err)
	}
	if err := silent.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	ectx, ecancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ecancel()
	if err := stream.Ensure(ectx, js, stream.Topology{Replicas: 1, Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}

	// The stream answers now; the next caller must not wait behind the
	// abandoned flush.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := gc.PublishAll(ctx, notice("second"))[0]; err != nil {
		t.Fatalf("publish after the stream came back (%s later): %v", time.Since(start).Round(time.Millisecond), err)
	}
}
