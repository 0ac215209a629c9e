package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/relay"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

func digest(plain string) string {
	s := sha256.Sum256([]byte(plain))
	return "sha256:" + hex.EncodeToString(s[:])
}

// configYAML is a valid configuration whose tokens are given as is.
func configYAML(listen, platformToken, authorityToken string) string {
	return fmt.Sprintf(`nats:
  url: nats://127.0.0.1:1
http:
  listen: %s
platforms:
  - id: examplenet
    name: ExampleNet Ltd
    tokens: [%q]
    establishment: IE
    fallback: [establishment]
authorities:
  - id: de-bka
    country: DE
    name: Bundeskriminalamt
    tokens: [%q]
`, listen, platformToken, authorityToken)
}

var good = configYAML("127.0.0.1:0", digest("examplenet-token-0000000001"), digest("de-bka-token-000000000001"))

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb relaytest.Buffer
	code = cli.Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestExit covers every way to end before the relay starts, or just after.
func TestExit(t *testing.T) {
	goodPath := writeFile(t, "good.yaml", good)
	bad := func(from, to string) string {
		if !strings.Contains(good, from) {
			t.Fatalf("%q not in the good configuration", from)
		}
		return writeFile(t, "bad.yaml", strings.Replace(good, from, to, 1))
	}
	plain := writeFile(t, "plain.yaml", configYAML("127.0.0.1:0", "examplenet-token-0000000001", "de-bka-token-000000000001"))
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // each a substring the output must hold
		stderr []string
	}{
		{name: "no args", args: nil, code: cli.ExitUsage, stderr: []string{"Commands:", "serve"}},
		{name: "unknown command", args: []string{"serv"}, code: cli.ExitUsage, stderr: []string{"unknown command", "Commands:"}},
		{name: "flag as command", args: []string{"--config", goodPath}, code: cli.ExitUsage, stderr: []string{"unknown command"}},
		{name: "help", args: []string{"help"}, code: cli.ExitOK, stdout: "Commands:"},
		{name: "-h", args: []string{"-h"}, code: cli.ExitOK, stdout: "Commands:"},
		{name: "dev -h", args: []string{"dev", "-h"}, code: cli.ExitOK, stderr: []string{"-config", "-data"}},
		{name: "serve -h", args: []string{"serve", "-h"}, code: cli.ExitOK, stderr: []string{"-config", "-services"}},
		{name: "token -h", args: []string{"token", "-h"}, code: cli.ExitOK},
		{name: "dev unknown flag", args: []string{"dev", "--nope"}, code: cli.ExitUsage, stderr: []string{"nope"}},
		{name: "dev stray argument", args: []string{"dev", "extra"}, code: cli.ExitUsage, stderr: []string{`unexpected argument "extra"`}},
		{name: "token stray argument", args: []string{"token", "extra"}, code: cli.ExitUsage, stderr: []string{`unexpected argument "extra"`}},

		{name: "serve without --config", args: []string{"serve"}, code: cli.ExitUsage, stderr: []string{"--config is required"}},
		{name: "serve with empty --config", args: []string{"serve", "--config", ""}, code: cli.ExitUsage, stderr: []string{"--config is required"}},
		{name: "serve stray argument", args: []string{"serve", "--config", goodPath, "extra"}, code: cli.ExitUsage, stderr: []string{`unexpected argument "extra"`}},
		{name: "serve missing file", args: []string{"serve", "--config", "/nonexistent/relay.yaml"}, code: cli.ExitUsage, stderr: []string{"/nonexistent/relay.yaml"}},
		{name: "serve misspelt key", args: []string{"serve", "--config", bad("    establishment: IE", "    establishmnet: IE")}, code: cli.ExitUsage,
			stderr: []string{"platforms[0].establishmnet: unknown field"}},
		{name: "serve unknown country", args: []string{"serve", "--config", bad("country: DE", "country: XX")}, code: cli.ExitUsage,
			stderr: []string{"authorities[0].country", `"XX"`}},
		{name: "serve bad member_states", args: []string{"serve", "--config", bad("platforms:", "member_states: EU28\nplatforms:")}, code: cli.ExitUsage,
			stderr: []string{"member_states: must be EU27 or EEA"}},
		{name: "serve malformed digest", args: []string{"serve", "--config", bad(`sha256:`, `sha256:ABC`)}, code: cli.ExitUsage,
			stderr: []string{"platforms[0].tokens[0]: malformed digest"}},
		{name: "serve bad duration", args: []string{"serve", "--config", bad("platforms:", "retention:\n  notices: 30x\nplatforms:")}, code: cli.ExitUsage,
			stderr: []string{"retention.notices", `"30x"`}},
		{name: "serve plain token", args: []string{"serve", "--config", plain}, code: cli.ExitUsage,
			stderr: []string{"platforms[0].tokens[0]: plain tokens are not allowed", "authorities[0].tokens[0]: plain tokens are not allowed"}},
		{name: "serve unknown service", args: []string{"serve", "--config", goodPath, "--services", "nope"}, code: cli.ExitUsage,
			stderr: []string{`unknown service "nope"`}},
		{name: "serve one unknown service among known", args: []string{"serve", "--config", goodPath, "--services", relay.ServiceNames()[0] + ", nope"}, code: cli.ExitUsage,
			stderr: []string{`unknown service "nope"`}},
		{name: "serve empty service name", args: []string{"serve", "--config", goodPath, "--services", ","}, code: cli.ExitUsage,
			stderr: []string{`unknown service ""`}},
		// nats.url points at a closed port: a failure, not bad usage.
		{name: "serve without NATS", args: []string{"serve", "--config", goodPath, "--services", strings.Join(relay.ServiceNames(), ",")}, code: cli.ExitFailure,
			stderr: []string{"start failed", "127.0.0.1:1"}},

		// Notices and tokens leave only over TLS (contract section 10).
		{name: "inbox pull over http to another host", args: []string{"inbox", "pull", "--url", "http://relay.example.eu", "--token", "t", "--out", t.TempDir(), "--once"},
			code: cli.ExitUsage, stderr: []string{"--url", "must be an https:// URL"}},
		{name: "inbox pull with a missing --ca", args: []string{"inbox", "pull", "--url", "https://127.0.0.1:1", "--token", "t", "--out", t.TempDir(), "--ca", "/nonexistent/ca.pem", "--once"},
			code: cli.ExitUsage, stderr: []string{"--ca", "/nonexistent/ca.pem"}},
		{name: "inbox pull with a --ca that is no PEM", args: []string{"inbox", "pull", "--url", "https://127.0.0.1:1", "--token", "t", "--out", t.TempDir(), "--ca", goodPath, "--once"},
			code: cli.ExitUsage, stderr: []string{"--ca", "no PEM certificate"}},
		{name: "bench over http to another host", args: []string{"bench", "--url", "http://relay.example.eu", "--platform-token", "t", "--authority-tokens", "DE=t"},
			code: cli.ExitUsage, stderr: []string{"--url", "must be an https:// URL"}},

		{name: "dev bad config", args: []string{"dev", "--data", t.TempDir(), "--config", bad("id: de-bka", "id: examplenet")}, code: cli.ExitUsage,
			stderr: []string{"authorities[0].id", "already used by platforms[0].id"}},
		{name: "dev plain token too short", args: []string{"dev", "--data", t.TempDir(), "--config", bad(digest("examplenet-token-0000000001"), "short")}, code: cli.ExitUsage,
			stderr: []string{"platforms[0].tokens[0]: plain token too short"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, stdout, stderr := run(ctx, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout, tt.stdout)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}

func TestToken(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		code, stdout, stderr := run(context.Background(), "token")
		if code != cli.ExitOK || stderr != "" {
			t.Fatalf("token: exit %d, stderr %q", code, stderr)
		}
		m := regexp.MustCompile(`^token:\s+(\S+)\ndigest:\s+(sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("token printed %q, want a token line and a digest line", stdout)
		}
		if got, want := m[2], digest(m[1]); got != want {
			t.Errorf("digest %s is not the SHA-256 of token %s (%s)", got, m[1], want)
		}
		if len(m[1]) < 32 || seen[m[1]] {
			t.Errorf("token %q short or repeated", m[1])
		}
		seen[m[1]] = true
	}
}

// TestDevWithPlainTokens runs `dev` with a configuration of plain tokens
// until it listens, checks that it answers, and stops it.
func TestDevWithPlainTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded NATS server")
	}
	cfg := writeFile(t, "dev.yaml", configYAML("127.0.0.1:0", "examplenet-token-0000000001", "de-bka-token-000000000001"))
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr relaytest.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, []string{"dev", "--data", data, "--config", cfg}, &stdout, &stderr) }()

	listening := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	deadline := time.After(60 * time.Second)
	for base == "" {
		select {
		case code := <-done:
			t.Fatalf("dev ended with %d before listening\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
		case <-deadline:
			cancel()
			t.Fatalf("dev did not listen within 60s\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
			if m := listening.FindStringSubmatch(stdout.String()); m != nil {
				base = m[1]
			}
		}
	}
	if strings.Contains(stdout.String(), "demo configuration") {
		t.Error("dev --config printed the demo configuration")
	}

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: %d %s", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz: %d %s", code, body)
	}
	// The plain token was loaded as the authority's token: the inbox knows it.
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/inbox", nil)
	req.Header.Set("Authorization", "Bearer de-bka-token-000000000001")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/inbox with the plain authority token: %d, want 200", resp.StatusCode)
	}

	cancel()
	select {
	case code := <-done:
		if code != cli.ExitOK {
			t.Errorf("dev exited %d after cancel, want 0\nstderr: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of cancel")
	}
}

// TestBenchInProcess runs a small bench against an in-process relay: it
// must drain every delivery and report its books and measurements.
func TestBenchInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a relay under load")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, stdout, stderr := run(ctx, "bench", "--notices", "300", "--clients", "16", "--authorities", "5")
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s%s", code, stdout, stderr)
	}
	var res struct {
		Notices, Deliveries, Lost, Misrouted, Rejected int
		Dup                                            int                   `json:"duplicate_delivery_ids"`
		PerSec                                         float64               `json:"notices_per_sec"`
		AcceptP99                                      float64               `json:"accept_p99_ms"`
		RSS                                            float64               `json:"peak_rss_mb"`
		Writes                                         *float64              `json:"writes_per_notice"`
		Stages                                         map[string][2]float64 `json:"stages"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("bench output %q: %v", stdout, err)
	}
	if res.Notices != 300 || res.Lost != 0 || res.Misrouted != 0 || res.Dup != 0 || res.Rejected != 0 {
		t.Fatalf("bench books: %s", stdout)
	}
	// Each notice concerns one to three of the five Member States.
	if res.Deliveries < 300 || res.Deliveries > 900 {
		t.Errorf("%d deliveries for 300 notices", res.Deliveries)
	}
	if res.PerSec <= 0 || res.AcceptP99 <= 0 || res.RSS <= 0 || len(res.Stages) != 3 {
		t.Errorf("measurements missing: %s", stdout)
	}
	// Body, events, deliveries and status: more than 8, fewer than 30.
	if res.Writes == nil || *res.Writes < 8 || *res.Writes > 30 {
		t.Errorf("writes per notice: %s", stdout)
	}
}
