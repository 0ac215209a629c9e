package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/web"
	"github.com/noticerelay/noticerelay/services/station"
)

func TestPasswdFromStdin(t *testing.T) {
	var out, errb bytes.Buffer
	if code := passwd(nil, strings.NewReader("a long enough password\n"), &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	h := strings.TrimSpace(out.String())
	if !strings.HasPrefix(h, "$argon2id$") || web.CheckPasswordHash(h) != nil {
		t.Fatalf("not an argon2id hash: %q", h)
	}
	out.Reset()
	if code := passwd(nil, strings.NewReader("short\n"), &out, &errb); code != ExitUsage || out.Len() != 0 {
		t.Fatalf("a short password: exit %d, printed %q", code, out.String())
	}
}

func TestStationNeedsAValidConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"station"}, &out, &errb); code != ExitUsage {
		t.Fatalf("without --config: exit %d", code)
	}
	if code := Main(t.Context(), []string{"station", "--config", "testdata/does-not-exist.yaml"}, &out, &errb); code != ExitUsage ||
		!strings.Contains(errb.String(), "does-not-exist.yaml") {
		t.Fatalf("a missing file: exit %d: %s", code, errb.String())
	}
}

// The station configuration that `dev` writes for the demo loads, and
// seals the demo authority's deliveries to a key the station holds.
func TestDemoStationConfigLoads(t *testing.T) {
	data := t.TempDir()
	c, tokens, err := config.Demo(data)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sealDemoStation(data, c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Authority("de-police").AgeRecipient == "" {
		t.Fatal("the demo station's authority is not sealed")
	}
	again, err := sealDemoStation(data, c)
	if err != nil || again != key {
		t.Fatalf("a second start makes another key: %v", err)
	}
	path, err := writeDemoStation(data, "http://127.0.0.1:8080", key, tokens["NR_STATION_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NR_TOKEN_DE", tokens["NR_TOKEN_DE"])
	cfg, err := station.LoadConfig(path)
	if err != nil {
		t.Fatalf("the demo station's configuration: %v", err)
	}
	// As the example: the relay names the authority.
	if len(cfg.Users) != 2 || cfg.Authority != "" || cfg.Relay.URL != "http://127.0.0.1:8080" {
		t.Fatalf("demo station: %+v", cfg)
	}
}
