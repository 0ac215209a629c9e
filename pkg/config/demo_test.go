package config_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/country"
)

func TestDemo(t *testing.T) {
	// A data dir that does not exist yet is created.
	dir := filepath.Join(t.TempDir(), "data")
	c, tokens, err := config.Demo(dir)
	if err != nil {
		t.Fatalf("Demo: %v", err)
	}
	path := filepath.Join(dir, config.DemoTokensFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}

	// The configuration: defaults, one platform, 27 Member States + Europol.
	if c.MemberStates != "EU27" || c.HTTP.Listen != "127.0.0.1:8080" ||
		time.Duration(c.Retention.Notices) != 720*time.Hour || time.Duration(c.Inbox.Lease) != time.Minute || c.Limits.MaxInFlight != 1024 {
		t.Errorf("demo settings = %+v", *c)
	}
	if len(c.Platforms) != 1 || c.Platforms[0].ID != config.DemoPlatform || c.Platforms[0].Establishment != "IE" {
		t.Fatalf("demo platforms = %+v", c.Platforms)
	}
	if len(c.Authorities) != 28 {
		t.Fatalf("%d demo authorities, want 28 (27 Member States + Europol)", len(c.Authorities))
	}
	var countries []string
	for _, a := range c.Authorities {
		countries = append(countries, a.Country)
		if a.ID != config.DemoAuthority(a.Country) || a.Name == "" {
			t.Errorf("authority %+v: want id %s and a name", a, config.DemoAuthority(a.Country))
		}
	}
	want := append(slices.Clone(country.EU27), country.Europol)
	slices.Sort(want)
	slices.Sort(countries)
	if !slices.Equal(countries, want) {
		t.Errorf("authority countries = %v, want %v", countries, want)
	}
	if a := c.Authority("europol"); a == nil || a.Country != country.Europol {
		t.Errorf(`Authority("europol") = %+v`, a)
	}

	// Every digest in the configuration is the digest of its plain token.
	if len(tokens) != 31 {
		t.Errorf("%d tokens, want 31 (platform, auditor, 28 authorities and the demo station's password)", len(tokens))
	}
	if got, want := c.Platforms[0].Tokens, []config.Token{config.Digest(tokens["NR_PLATFORM_TOKEN"])}; !slices.Equal(got, want) {
		t.Errorf("platform tokens = %v, want %v", got, want)
	}
	for _, a := range c.Authorities {
		plain := tokens["NR_TOKEN_"+a.Country]
		if plain == "" {
			t.Errorf("no plain token NR_TOKEN_%s", a.Country)
			continue
		}
		if len(a.Tokens) != 1 || a.Tokens[0].String() != sum(plain) {
			t.Errorf("%s: tokens %v, want [%s]", a.ID, a.Tokens, sum(plain))
		}
	}
	seen := map[string]bool{}
	for _, v := range tokens {
		if seen[v] || len(v) < 16 {
			t.Errorf("token %q repeated or short", v)
		}
		seen[v] = true
	}

	// The file can be sourced by a shell and holds the same tokens.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tokens {
		if !strings.Contains(string(b), "\nexport "+k+"="+v+"\n") {
			t.Errorf("%s lacks export %s=%s", path, k, v)
		}
	}

	// A second start returns the same tokens and digests, and leaves the file alone.
	c2, tokens2, err := config.Demo(dir)
	if err != nil {
		t.Fatalf("second Demo: %v", err)
	}
	if !maps.Equal(tokens, tokens2) {
		t.Errorf("second Demo returned other tokens")
	}
	for i := range c.Authorities {
		if !slices.Equal(c.Authorities[i].Tokens, c2.Authorities[i].Tokens) {
			t.Errorf("authority %s: digests changed on the second start", c.Authorities[i].ID)
		}
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Errorf("second Demo rewrote %s", path)
	}

	// The demo configuration passes the validation of a configuration file.
	if _, err := config.Parse([]byte(demoYAML(c)), config.Options{}); err != nil {
		t.Errorf("the demo configuration would not load as a file: %v", err)
	}
}

// TestDemoKeepsTokens: tokens already in the file are kept, missing ones made.
func TestDemoKeepsTokens(t *testing.T) {
	tests := []struct {
		name string
		file string
		keep map[string]string
	}{
		{"platform token kept", "export NR_PLATFORM_TOKEN=kept-platform-token-0001\n", map[string]string{"NR_PLATFORM_TOKEN": "kept-platform-token-0001"}},
		{"comments and blank lines", "# comment\n\nexport NR_TOKEN_DE=kept-de-token-000000001\nNR_TOKEN_EU=kept-eu-token-000000001\n",
			map[string]string{"NR_TOKEN_DE": "kept-de-token-000000001", "NR_TOKEN_EU": "kept-eu-token-000000001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, config.DemoTokensFile)
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, tokens, err := config.Demo(dir)
			if err != nil {
				t.Fatalf("Demo: %v", err)
			}
			for k, v := range tt.keep {
				if tokens[k] != v {
					t.Errorf("%s = %q, want %q", k, tokens[k], v)
				}
			}
			if len(tokens) != 31 {
				t.Errorf("%d tokens, want 31", len(tokens))
			}
			if got := c.Authority("de-police").Tokens[0]; got != config.Digest(tokens["NR_TOKEN_DE"]) {
				t.Errorf("de-police digest %s does not match NR_TOKEN_DE", got)
			}
			_, again, err := config.Demo(dir)
			if err != nil || !maps.Equal(tokens, again) {
				t.Errorf("second Demo: %v, tokens equal %v", err, maps.Equal(tokens, again))
			}
		})
	}
}

// TestWriteYAMLLoads: what WriteYAML writes (dev's demo-config.yaml, the
// configuration `init` writes for compose) loads again, durations
// included, and keeps what it wrote.
func TestWriteYAMLLoads(t *testing.T) {
	dir := t.TempDir()
	c, _, err := config.Demo(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.HTTP.StoreTimeout = config.Duration(2500 * time.Millisecond)
	path := filepath.Join(dir, config.DemoConfigFile)
	if err := config.WriteYAML(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path, config.Options{})
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("Load of what WriteYAML wrote: %v\n%s", err, data)
	}
	if got.HTTP != c.HTTP || got.NATS.URL != c.NATS.URL || len(got.Authorities) != len(c.Authorities) ||
		got.Platforms[0].Tokens[0] != c.Platforms[0].Tokens[0] {
		t.Errorf("loaded http %+v nats %q, %d authorities; wrote http %+v nats %q, %d authorities",
			got.HTTP, got.NATS.URL, len(got.Authorities), c.HTTP, c.NATS.URL, len(c.Authorities))
	}
}

func TestDemoUnreadableDir(t *testing.T) {
	// The data dir is a file: the tokens can be neither read nor written.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := config.Demo(file); err == nil {
		t.Fatal("Demo under a regular file succeeded")
	}
}

func demoYAML(c *config.Config) string {
	var b strings.Builder
	b.WriteString("platforms:\n")
	for _, p := range c.Platforms {
		fmt.Fprintf(&b, "  - id: %s\n    name: %q\n    establishment: %s\n    fallback: [%s]\n    tokens:\n", p.ID, p.Name, p.Establishment, strings.Join(p.Fallback, ", "))
		for _, t := range p.Tokens {
			fmt.Fprintf(&b, "      - %q\n", t)
		}
	}
	b.WriteString("authorities:\n")
	for _, a := range c.Authorities {
		fmt.Fprintf(&b, "  - id: %s\n    country: %s\n    name: %q\n    tokens:\n", a.ID, a.Country, a.Name)
		for _, t := range a.Tokens {
			fmt.Fprintf(&b, "      - %q\n", t.String())
		}
	}
	return b.String()
}
