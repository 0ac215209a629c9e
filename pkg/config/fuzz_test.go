package config

import (
	"os"
	"testing"
)

// FuzzParse: no configuration text makes the loader panic, and a
// configuration it accepts names at least one platform and one authority,
// each with a token.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/example.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("platforms: [{id: p1, name: P, tokens: [\"0123456789abcdef\"]}]\nauthorities: [{id: de-x, country: DE, name: D, tokens: [\"fedcba9876543210\"]}]\n"))
	f.Add([]byte("member_states: EEA\nretention: {notices: 30d}\ninbox: {lease: 90s}\n"))
	f.Add([]byte("authorities: [{country: el}, {country: GR}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, Options{AllowPlainTokens: true})
		if err != nil {
			return
		}
		if len(c.Platforms) == 0 || len(c.Authorities) == 0 {
			t.Fatalf("accepted a configuration without platforms or authorities: %q", data)
		}
		for _, p := range c.Platforms {
			if len(p.Tokens) == 0 {
				t.Fatalf("platform %s without tokens", p.ID)
			}
		}
	})
}
