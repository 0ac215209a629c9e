package auditlog

import (
	"context"
	"errors"
	"time"
)

// ReportOptions say what a report covers and what it verifies against.
type ReportOptions struct {
	// Verify is what the log is verified against; its Signed field is set
	// by BuildReport.
	Verify VerifyOptions
	// Replay is the period and deadline of the statistics; Replay.At is the
	// report's end (Until).
	Replay ReplayOptions
	// Now is when the report is made.
	Now time.Time
}

// Report is what an auditor reads: whether the log verified, and the
// statistics of the verified log.
type Report struct {
	Generated time.Time
	// Since is zero when the report starts at the first leaf.
	Since, Until   time.Time
	UrgentDeadline time.Duration
	Verification   *Result
	// Replay holds the statistics of the leaves that the largest checkpoint
	// signs (only those read before a problem, when there is one).
	Replay *Replay
}

// BuildReport verifies the log and, in the same pass, replays the leaves
// that its largest checkpoint signs: a report is built only from signed
// leaves, and says so when the log is not intact.
func BuildReport(ctx context.Context, leaves Leaves, checkpoints []StoredCheckpoint, o ReportOptions) (*Report, error) {
	if o.Verify.Verifier == nil {
		return nil, errors.New("audit report: no verifier key")
	}
	p := newReplayer(o.Replay)
	vo := o.Verify
	vo.Signed = p.leaf
	res, err := Verify(ctx, leaves, checkpoints, vo)
	if err != nil {
		return nil, err
	}
	return &Report{Generated: o.Now, Since: o.Replay.Since, Until: o.Replay.At, UrgentDeadline: o.Replay.UrgentDeadline,
		Verification: res, Replay: p.result()}, nil
}
