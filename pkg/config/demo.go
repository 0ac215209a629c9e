package config

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/durable"
)

// DemoTokensFile is the file under `dev`'s data dir that keeps the demo
// tokens, so that they survive a restart and a shell can source them.
const DemoTokensFile = "demo-tokens.env"

// DemoNATSListen is where the demo's embedded NATS server accepts clients,
// so that `noticerelay audit` and NATS consumers can reach it.
const DemoNATSListen = "127.0.0.1:4222"

// DemoAuditor is the id of the demo configuration's auditor.
const DemoAuditor = "demo-auditor"

// DemoConfigFile is the file under `dev`'s data dir that holds the demo
// configuration with digests only, for the tools that take --config
// (`noticerelay audit ...`, `noticerelay explain`).
const DemoConfigFile = "demo-config.yaml"

// DemoPlatform is the id of the demo configuration's platform.
const DemoPlatform = "demo"

// DemoAuthority returns the id of the demo authority of a Member State
// (or "europol" for EU).
func DemoAuthority(cc string) string {
	if cc == country.Europol {
		return "europol"
	}
	return strings.ToLower(cc) + "-police"
}

// Demo returns `dev`'s built-in configuration: one demo platform
// (established in IE) and one authority per Member State plus Europol. Its
// plain tokens are made once and kept in dataDir/demo-tokens.env (mode
// 0600) as shell variables: NR_PLATFORM_TOKEN and NR_TOKEN_<CC>, and
// NR_STATION_PASSWORD, the password of the demo station's users.
func Demo(dataDir string) (*Config, map[string]string, error) {
	path := filepath.Join(dataDir, DemoTokensFile)
	tokens, err := readEnv(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("reading demo tokens: %w", err)
	}
	states := append(append([]string{}, country.EU27...), country.Europol)
	sort.Strings(states)
	vars := append([]string{"NR_PLATFORM_TOKEN", "NR_AUDITOR_TOKEN", "NR_STATION_PASSWORD"}, func() []string {
		out := make([]string, len(states))
		for i, cc := range states {
			out[i] = "NR_TOKEN_" + cc
		}
		return out
	}()...)
	changed := false
	for _, v := range vars {
		if tokens[v] == "" {
			tokens[v] = NewToken()
			changed = true
		}
	}
	if changed {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("creating data dir: %w", err)
		}
		var b strings.Builder
		b.WriteString("# noticerelay: demo bearer tokens (plain; demo only). Use: . ./" + DemoTokensFile + "\n")
		for _, v := range vars {
			fmt.Fprintf(&b, "export %s=%s\n", v, tokens[v])
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return nil, nil, fmt.Errorf("writing demo tokens: %w", err)
		}
	}
	c := &Config{
		NATS:         NATS{URL: "nats://" + DemoNATSListen, Listen: DemoNATSListen},
		HTTP:         HTTP{Listen: "127.0.0.1:8080"},
		MemberStates: "EU27",
		Platforms: []Platform{{ID: DemoPlatform, Name: "Demo Platform Ltd", Establishment: "IE",
			Fallback: []string{"establishment"}, Tokens: []Token{Digest(tokens["NR_PLATFORM_TOKEN"])}}},
	}
	for _, cc := range states {
		name := cc + " national contact point (demo)"
		if cc == country.Europol {
			name = "Europol (demo)"
		}
		c.Authorities = append(c.Authorities, Authority{ID: DemoAuthority(cc), Country: cc, Name: name,
			Tokens: []Token{Digest(tokens["NR_TOKEN_"+cc])}})
	}
	c.Auditors = []Auditor{{ID: DemoAuditor, Tokens: []Token{Digest(tokens["NR_AUDITOR_TOKEN"])}}}
	if err := c.fill(); err != nil {
		return nil, nil, err
	}
	return c, tokens, nil
}

// NewToken returns a new random bearer token.
func NewToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "nr_" + base64.RawURLEncoding.EncodeToString(b)
}

func readEnv(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, sc.Err()
}

// WriteYAML writes c as a configuration file (token digests only) that
// Load accepts, atomically.
func WriteYAML(path string, c *Config) error {
	type platform struct {
		ID                  string   `yaml:"id"`
		Name                string   `yaml:"name"`
		Tokens              []string `yaml:"tokens"`
		Establishment       string   `yaml:"establishment,omitempty"`
		LegalRepresentative string   `yaml:"legal_representative,omitempty"`
		Fallback            []string `yaml:"fallback,omitempty"`
	}
	type authority struct {
		ID      string   `yaml:"id"`
		Country string   `yaml:"country"`
		Name    string   `yaml:"name"`
		Tokens  []string `yaml:"tokens"`
	}
	type auditor struct {
		ID     string   `yaml:"id"`
		Tokens []string `yaml:"tokens"`
	}
	digests := func(ts []Token) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = t.String()
		}
		return out
	}
	doc := struct {
		NATS         map[string]string `yaml:"nats"`
		HTTP         HTTP              `yaml:"http"`
		MemberStates string            `yaml:"member_states"`
		Platforms    []platform        `yaml:"platforms"`
		Authorities  []authority       `yaml:"authorities"`
		Auditors     []auditor         `yaml:"auditors,omitempty"`
		Audit        Audit             `yaml:"audit"`
	}{NATS: map[string]string{"url": c.NATS.URL}, HTTP: c.HTTP, MemberStates: c.MemberStates, Audit: c.Audit}
	if c.NATS.Listen != "" {
		doc.NATS["listen"] = c.NATS.Listen
	}
	for _, p := range c.Platforms {
		doc.Platforms = append(doc.Platforms, platform{p.ID, p.Name, digests(p.Tokens), p.Establishment, p.LegalRepresentative, p.Fallback})
	}
	for _, a := range c.Authorities {
		doc.Authorities = append(doc.Authorities, authority{a.ID, a.Country, a.Name, digests(a.Tokens)})
	}
	for _, a := range c.Auditors {
		doc.Auditors = append(doc.Auditors, auditor{a.ID, digests(a.Tokens)})
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encoding configuration: %w", err)
	}
	if err := durable.Replace(path, append([]byte("# Written by `noticerelay dev` or `noticerelay init` for the demo: token digests only.\n"), data...), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
