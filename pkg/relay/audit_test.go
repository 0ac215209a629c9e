package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/services/audit"
)

const auditorToken = "auditor-token-dsc-ie-0001"

// startAudited starts a relay with an auditor and a NATS listener for the
// audit command line; `dev` makes its audit keys under the data dir.
func startAudited(t *testing.T, opts ...relaytest.Options) (*relaytest.Relay, string) {
	var o relaytest.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Config = func(c *config.Config) {
		c.NATS.Listen = "127.0.0.1:0"
		c.Auditors = []config.Auditor{{ID: "dsc-ie", Tokens: []config.Token{config.Digest(auditorToken)}}}
	}
	r := relaytest.Start(t, o)
	return r, verifierKey(t, r)
}

// verifierKey returns the verifier key `dev` made under r's data dir.
func verifierKey(t *testing.T, r *relaytest.Relay) string {
	t.Helper()
	vkey, err := os.ReadFile(filepath.Join(r.DataDir, "keys", auditlog.VerifierKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(vkey))
}

// auditCLI runs `noticerelay audit args...` and returns its exit status and
// output.
func auditCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := cli.Main(ctx, append([]string{"audit"}, args...), &out, &errb)
	return code, out.String() + errb.String()
}

// replayVerified waits until the whole log of r verifies under a signed
// checkpoint (audit verify), then returns what audit replay counts in it.
func replayVerified(t *testing.T, r *relaytest.Relay) auditlog.Replay {
	t.Helper()
	vkey := verifierKey(t, r)
	relaytest.Eventually(t, wait, "a checkpoint of the whole log", func() bool {
		code, out := auditCLI(t, "verify", "--nats", r.NATSURL(), "--verifier-key", vkey)
		return code == 0 && strings.Contains(out, "intact") && !strings.Contains(out, "not signed yet")
	})
	code, out := auditCLI(t, "replay", "--nats", r.NATSURL(), "--json")
	var rep auditlog.Replay
	if code != 0 || json.NewDecoder(strings.NewReader(out)).Decode(&rep) != nil { // a note follows the JSON
		t.Fatalf("replay: %d %s", code, out)
	}
	return rep
}

// The audit log end to end: a notice's whole life is in the log, signed,
// provable over HTTP and from an export, verifiable offline; no leaf holds
// anything from the notice body; any change to the export is found.
func TestAuditLog(t *testing.T) {
	r, vkey := startAudited(t)
	id, markers := markedLife(t, r, "AUDIT-REF-1")
	r.Submit("othernet", relaytest.Notice("AUDIT-REF-2", false, "NL", "", ""))

	// HTTP: the checkpoint is public; proofs need an auditor's token.
	relaytest.Eventually(t, wait, "a checkpoint", func() bool {
		return r.Do("GET", "/v1/audit/checkpoint", "", nil).Status == http.StatusOK
	})
	v, err := auditlog.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	resp := r.Do("GET", "/v1/audit/checkpoint", "", nil)
	if _, err := auditlog.Open(resp.Body, v); err != nil {
		t.Fatalf("checkpoint %s: %v", resp.Body, err)
	}
	for _, c := range []struct {
		who, notice string
		want        int
	}{
		{"", id, 401},
		{"platform:examplenet", id, 401},
		{"authority:de-bka", id, 401},
		{auditorToken, "6f1f6d0e-5b7a-4c1e-9a55-2f0c3d6e8b21", 404},
		{auditorToken, "not-an-id", 404},
		{auditorToken, "", 400},
	} {
		if got := r.Do("GET", "/v1/audit/proof?notice="+c.notice, c.who, nil); got.Status != c.want {
			t.Errorf("%s %q: want %d, got %s", c.who, c.notice, c.want, got)
		}
	}
	resp = r.Do("GET", "/v1/audit/proof?notice="+id, auditorToken, nil)
	if resp.Status != http.StatusOK {
		t.Fatal(resp)
	}
	var ans audit.ProofAnswer
	if err := resp.JSON(&ans); err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, p := range ans.Proofs {
		if _, _, err := auditlog.VerifyProofFile([]byte(p.TLogProof), p.Leaf, v); err != nil {
			t.Errorf("proof of leaf %s: %v", p.Index, err)
		}
		var e struct{ Type string }
		_ = json.Unmarshal(p.Leaf, &e)
		types[e.Type] = true
	}
	for _, typ := range []string{"accepted", "decided", "queued", "delivered", "acknowledged", "withdrawn"} {
		if !types[typ] {
			t.Errorf("no proof of a %s leaf: %v", typ, types)
		}
	}

	// The command line against the relay's NATS, and offline.
	nats := r.NATSURL()
	dir := filepath.Join(t.TempDir(), "export")
	if code, out := auditCLI(t, "export", "--nats", nats, "--verifier-key", vkey, "--out", dir); code != 0 {
		t.Fatalf("export: %d %s", code, out)
	}
	if code, out := auditCLI(t, "verify", "--nats", nats, "--verifier-key", vkey); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify --nats: %d %s", code, out)
	}
	code, out := auditCLI(t, "verify", "--from", dir, "--verifier-key", vkey)
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify --from: %d %s", code, out)
	}
	t.Log(out)
	all, err := os.ReadFile(filepath.Join(dir, auditlog.LeavesFile))
	if err != nil {
		t.Fatal(err)
	}
	cps, _ := os.ReadFile(filepath.Join(dir, auditlog.CheckpointsFile))
	all = append(all, cps...)
	for _, m := range markers {
		if bytes.Contains(all, []byte(m)) {
			t.Errorf("the export holds %q", m)
		}
	}

	pdir := t.TempDir()
	pkey := filepath.Join(r.DataDir, "keys", "pseudonym.key")
	code, out = auditCLI(t, "prove", "--from", dir, "--notice", id, "--pseudonym-key", pkey, "--verifier-key", vkey, "--out", pdir)
	if code != 0 {
		t.Fatalf("prove: %d %s", code, out)
	}
	files := strings.Fields(out)
	if len(files) != len(ans.Proofs) {
		t.Fatalf("prove wrote %d proofs, HTTP gave %d", len(files), len(ans.Proofs))
	}
	for _, f := range files {
		if code, out := auditCLI(t, "verify-proof", f, "--verifier-key", vkey); code != 0 {
			t.Fatalf("verify-proof %s: %d %s", f, code, out)
		}
	}
	if code, out := auditCLI(t, "verify-proof", files[0], "--leaf", strings.TrimSuffix(files[1], ".tlog-proof")+".json", "--verifier-key", vkey); code != 1 {
		t.Fatalf("verify-proof with another leaf: %d %s", code, out)
	}

	code, out = auditCLI(t, "replay", "--from", dir, "--json")
	if code != 0 {
		t.Fatalf("replay: %d %s", code, out)
	}
	var rep auditlog.Replay
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Accepted != 2 || rep.Withdrawn != 1 {
		t.Fatalf("replay: %v %s", err, out)
	}
	if code, out := auditCLI(t, "replay", "--nats", nats, "--csv", "--at", time.Now().Add(-time.Hour).Format(time.RFC3339)); code != 0 ||
		!strings.HasPrefix(out, "authority,priority") {
		t.Fatalf("replay --csv: %d %s", code, out)
	}

	// One changed byte in the export: verify names the leaf.
	leaves := bytes.SplitAfter(all[:bytes.LastIndexByte(all[:len(all)-len(cps)], '\n')+1], []byte("\n"))
	leaves[3][10] ^= 0x01
	if err := os.WriteFile(filepath.Join(dir, auditlog.LeavesFile), bytes.Join(leaves, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = auditCLI(t, "verify", "--from", dir, "--verifier-key", vkey)
	if code != 1 || !strings.Contains(out, "BROKEN at leaf 3:") {
		t.Fatalf("verify after a change: %d %s", code, out)
	}

	// After a restart, the log continues the same tree.
	r.Restart()
	r.Submit("examplenet", relaytest.Notice("AUDIT-REF-3", true, "DE", "", ""))
	r.InboxUntil("de-bka", 1, wait)
	if code, out := auditCLI(t, "verify", "--nats", r.NATSURL(), "--verifier-key", vkey); code != 0 {
		t.Fatalf("verify after restart: %d %s", code, out)
	}
}

// Usage errors exit 2.
func TestAuditUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"verify"}, // no verifier key
		{"verify", "--nats", "nats://x", "--from", "d", "--verifier-key", "a+b+c"},
		{"keygen", "--out", "x"},
		{"replay", "--json", "--csv"},
		{"verify-proof"},
	} {
		if code, out := auditCLI(t, args...); code != 2 {
			t.Errorf("%v: want 2, got %d %s", args, code, out)
		}
	}
	dir := t.TempDir()
	code, out := auditCLI(t, "keygen", "--origin", "example.org/relay", "--out", dir)
	if code != 0 || !strings.HasPrefix(out, "example.org/relay+") {
		t.Fatalf("keygen: %d %s", code, out)
	}
	if code, _ := auditCLI(t, "keygen", "--origin", "example.org/relay", "--out", dir); code != 1 {
		t.Fatal("keygen overwrote its keys")
	}
}
