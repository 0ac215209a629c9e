package status_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// Issue 10, finding 8: two relays' status services on a 3-node cluster
// fold every notice's events without contending. Before, a conditional
// write that lost a race on the replicated bucket failed with code 10164,
// which was not taken for a conflict: the batch was retried after a delay
// with a `wrong last sequence` warning (600 to 900 per bench run).
func TestTwoStatusServicesOnCluster(t *testing.T) {
	c := relaytest.Cluster(t)
	obs, logs := observer.New(zapcore.DebugLevel)
	o := relaytest.OnCluster(t, c)
	o.Log = obs
	relays := []*relaytest.Relay{relaytest.Start(t, o), relaytest.Start(t, o)}
	const n = 300
	var ids []string
	for i := range n {
		r := relays[i%2]
		ids = append(ids, r.Submit("examplenet", relaytest.Notice(fmt.Sprintf("ref-%d", i), i%3 == 0, "DE", "FR", "")))
	}
	// Both relays hand out and acknowledge, each acknowledging what the
	// other handed out.
	authorities := []string{"de-bka", "fr-police", "ie-garda"}
	relaytest.Eventually(t, 3*time.Minute, "every notice acknowledged", func() bool {
		for k, a := range authorities {
			for i, r := range relays {
				ds := r.Inbox(a, 100)
				if len(ds) == 0 {
					continue
				}
				var ack []string
				for _, d := range ds {
					ack = append(ack, d.ID)
				}
				if resp := relays[(i+k+1)%2].Do("POST", "/v1/inbox/ack", "authority:"+a, map[string]any{"ids": ack}); resp.Status != http.StatusOK {
					t.Fatalf("ack: %s", resp)
				}
			}
		}
		for _, id := range ids {
			if relays[0].Status("examplenet", id)["status"] != "acknowledged" {
				return false
			}
		}
		return true
	})
	// Every notice's projection is complete, as each relay reads it.
	for i, id := range ids {
		for _, r := range relays {
			st := r.Status("examplenet", id)
			recips, _ := st["recipients"].([]any)
			if st["reference"] != fmt.Sprintf("ref-%d", i) || st["status"] != "acknowledged" || len(recips) < 2 {
				t.Fatalf("notice %d: %v", i, st)
			}
			for _, x := range recips {
				rc := x.(map[string]any)
				if rc["status"] != "acknowledged" || rc["queued_at"] == nil || rc["delivered_at"] == nil || rc["acknowledged_at"] == nil {
					t.Fatalf("notice %d: recipient %v", i, rc)
				}
			}
		}
	}
	warnings, conflicts, refolds := 0, 0, 0
	for _, e := range logs.All() {
		text := e.Message
		for _, f := range e.Context {
			text += " " + f.String
			if err, ok := f.Interface.(error); ok {
				text += " " + err.Error()
			}
		}
		if e.Level >= zapcore.WarnLevel && strings.Contains(e.LoggerName+text, "status") {
			warnings++
		}
		if strings.Contains(text, "wrong last sequence") {
			conflicts++
		}
		if strings.Contains(e.Message, "folding again") {
			refolds++
		}
	}
	t.Logf("%d notices; %d status warnings, %d log lines naming a wrong last sequence, %d conflicting writes folded again at once",
		n, warnings, conflicts, refolds)
	if warnings > 2 {
		t.Errorf("%d status warnings: the two status services contend", warnings)
	}
}
