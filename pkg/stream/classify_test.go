package stream_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// TestClassifyByCode: what a JetStream error means for the caller follows
// from its error code (and, for a stream at its limits, which limit).
func TestClassifyByCode(t *testing.T) {
	for _, tc := range []struct {
		code        jetstream.ErrorCode
		status      int
		description string
		want        fault.Kind
	}{
		{10071, 400, "wrong last sequence: 3", fault.Conflict},
		{10164, 400, "wrong last sequence", fault.Conflict},
		{10077, 503, "maximum messages per subject exceeded", fault.Exists},
		{10201, 400, "atomic publish batch contains duplicate message id", fault.Exists},
		{10077, 503, "maximum bytes exceeded", fault.Full},
		{10077, 503, "maximum messages exceeded", fault.Full},
		{10023, 503, "insufficient resources", fault.Full},
		{10047, 500, "insufficient storage resources available", fault.Full},
		{10158, 400, "duplicate message id is in process", fault.Unavailable},
		{10037, 404, "no message found", fault.NotFound},
		{10008, 503, "JetStream system temporarily unavailable", fault.Unavailable},
		{10003, 400, "bad request", fault.Internal},
	} {
		err := stream.Classify("test", &jetstream.APIError{ErrorCode: tc.code, Code: tc.status, Description: tc.description})
		if got := fault.KindOf(err); got != tc.want {
			t.Errorf("%d %q: %v, want %v", tc.code, tc.description, got, tc.want)
		}
	}
	if stream.Classify("test", nil) != nil {
		t.Error("nil classified as an error")
	}
	if err := stream.Classify("test", fmt.Errorf("wrapped: %w", jetstream.ErrKeyNotFound)); !fault.Is(err, fault.NotFound) {
		t.Errorf("key not found: %v", err)
	}
}
