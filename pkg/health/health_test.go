package health_test

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/noticerelay/noticerelay/pkg/health"
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
