package health_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/health"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// A loop that fails on every round logs its first failure and its
// recovery, not each round.
func TestStreakLogsOncePerStreak(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s := health.Streak{Log: zap.New(core), What: "reading"}
	s.OK()
	for range 100 {
		s.Fail(errors.New("no responders"))
	}
	s.OK()
	s.OK()
	s.Fail(errors.New("timeout"))
	if n := logs.FilterMessage("reading failed; retrying, logging a count every minute").Len(); n != 2 {
		t.Errorf("first failures logged %d times, want 2 (one per streak)", n)
	}
	works := logs.FilterMessage("reading works again").All()
	if len(works) != 1 || works[0].ContextMap()["failures"] != int64(100) {
		t.Errorf("recovery logged %v, want once with failures=100", works)
	}
	if logs.Len() != 3 {
		t.Errorf("%d lines logged, want 3", logs.Len())
	}
}

// TestConnOptionsLogSlowConsumersThroughZap is part of issue 10's finding
// 4: nats.go wrote "slow consumer, messages dropped" to stderr as plain
// text. A connection made with ConnOptions reports it through zap, once
// per drop streak that nats.go reports, with the subject.
func TestConnOptionsLogSlowConsumersThroughZap(t *testing.T) {
	srv, err := embedded.Start(embedded.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	core, logs := observer.New(zapcore.InfoLevel)
	m := health.New(zap.New(core))
	nc, err := srv.Connect("test", m.ConnOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// A subscription that holds one message and is never read: the second
	// message is dropped.
	sub, err := nc.SubscribeSync("slow.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(1, -1); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := nc.Publish("slow.test", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	relaytest.Eventually(t, 10*time.Second, "the slow consumer logged through zap", func() bool {
		return logs.FilterMessageSnippet("NATS dropped messages of a slow subscription").FilterField(zap.String("subject", "slow.test")).Len() > 0
	})
}
