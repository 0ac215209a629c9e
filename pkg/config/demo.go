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

	"github.com/noticerelay/noticerelay/pkg/country"
)

// DemoTokensFile is the file under `dev`'s data dir that keeps the demo
// tokens, so that they survive a restart and a shell can source them.
const DemoTokensFile = "demo-tokens.env"

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
// 0600) as shell variables: NR_PLATFORM_TOKEN and NR_TOKEN_<CC>.
func Demo(dataDir string) (*Config, map[string]string, error) {
	path := filepath.Join(dataDir, DemoTokensFile)
	tokens, err := readEnv(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("reading demo tokens: %w", err)
	}
	states := append(append([]string{}, country.EU27...), country.Europol)
	sort.Strings(states)
	vars := append([]string{"NR_PLATFORM_TOKEN"}, func() []string {
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
		b.WriteString("# noticerelay dev: demo bearer tokens (plain; demo only). Use: . ./" + DemoTokensFile + "\n")
		for _, v := range vars {
			fmt.Fprintf(&b, "export %s=%s\n", v, tokens[v])
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return nil, nil, fmt.Errorf("writing demo tokens: %w", err)
		}
	}
	c := &Config{
		NATS:         NATS{URL: "nats://127.0.0.1:4222"},
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
