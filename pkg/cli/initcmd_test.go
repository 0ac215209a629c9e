package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// TestInit runs `init` as the compose deployment does, twice, and then
// `serve` with what it wrote against a real NATS server: the tokens it
// printed are accepted, and `audit verify` with its configuration passes.
func TestInit(t *testing.T) {
	if code, _, stderr := run(t.Context(), "init"); code != cli.ExitUsage || !strings.Contains(stderr, "--dir is required") {
		t.Errorf("init without --dir: %d %q", code, stderr)
	}
	file := writeFile(t, "file", "")
	if code, _, stderr := run(t.Context(), "init", "--dir", file); code != cli.ExitFailure || stderr == "" {
		t.Errorf("init into a file: %d %q", code, stderr)
	}

	srv, err := embedded.Start(embedded.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	dir := filepath.Join(t.TempDir(), "state")
	args := []string{"init", "--dir", dir, "--nats", srv.ClientURL(), "--listen", "127.0.0.1:0"}
	code, first, stderr := run(t.Context(), args...)
	if code != cli.ExitOK {
		t.Fatalf("init: %d %s", code, stderr)
	}
	tokens := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (NR_[A-Z_]+)=(\S+)$`).FindAllStringSubmatch(first, -1) {
		tokens[m[1]] = m[2]
	}
	if tokens["NR_PLATFORM_TOKEN"] == "" || tokens["NR_TOKEN_DE"] == "" || !strings.HasPrefix(tokens["NR_AUDIT_VERIFIER_KEY"], "localhost/noticerelay-compose+") {
		t.Fatalf("init printed %q", first)
	}
	for _, f := range []string{config.DemoTokensFile, "keys/audit-signing.key", "keys/pseudonym.key", cli.InitConfigFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: readable by others", f, fi.Mode().Perm())
		}
	}
	skey, err := os.ReadFile(filepath.Join(dir, "keys/audit-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	// Again: the same tokens and keys, nothing overwritten.
	if code, again, stderr := run(t.Context(), args...); code != cli.ExitOK || again != first {
		t.Fatalf("init again: %d %s\n%q\nwant %q", code, stderr, again, first)
	}
	if skey2, _ := os.ReadFile(filepath.Join(dir, "keys/audit-signing.key")); !bytes.Equal(skey, skey2) {
		t.Error("the signing key changed on the second run")
	}
	cfgPath := filepath.Join(dir, cli.InitConfigFile)
	cfg, err := config.Load(cfgPath, config.Options{})
	if err != nil {
		t.Fatalf("serve refuses the configuration: %v", err)
	}
	if cfg.NATS.URL != srv.ClientURL() || cfg.HTTP.Listen != "127.0.0.1:0" || cfg.Audit.VerifierKey != tokens["NR_AUDIT_VERIFIER_KEY"] {
		t.Errorf("configuration: nats %q, listen %q, verifier key %q", cfg.NATS.URL, cfg.HTTP.Listen, cfg.Audit.VerifierKey)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var out, errb relaytest.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, []string{"serve", "--config", cfgPath}, &out, &errb) }()
	t.Cleanup(func() { cancel(); <-done })
	var base string
	relaytest.Eventually(t, 30*time.Second, "serve listening", func() bool {
		m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	body := `{"reference":"INIT-1","category":"other","imminent_threat":false,"suspicion":"test","locations":[{"country":"DE"}]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/notices", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tokens["NR_PLATFORM_TOKEN"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submission with the printed platform token: HTTP %d", resp.StatusCode)
	}
	// The signing key works: a checkpoint covering the log is published,
	// and verify accepts it.
	var verdict string
	relaytest.Eventually(t, 30*time.Second, "audit verify passes", func() bool {
		code, stdout, stderr := run(ctx, "audit", "verify", "--config", cfgPath)
		verdict = stdout + stderr
		return code == cli.ExitOK && !strings.Contains(stdout, "the latest signs 0 leaves")
	})
	t.Logf("audit verify: %s", strings.TrimSpace(verdict))
}
