package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/durable"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// The demo's receiving station: `dev` prepares one for the German demo
// authority, whose deliveries it seals to a key of its own.
const (
	demoStationCountry = "DE"
	demoStationConfig  = "demo-station.yaml"
	demoStationKey     = "demo-station.agekey"
	demoStationListen  = "127.0.0.1:9090"
)

// sealDemoStation makes (once) the age identity of the demo station under
// data/keys and has the relay seal its authority's deliveries to it.
func sealDemoStation(data string, c *config.Config) (string, error) {
	path, err := filepath.Abs(filepath.Join(data, "keys", demoStationKey))
	if err != nil {
		return "", err
	}
	var id *age.X25519Identity
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if id, err = age.ParseX25519Identity(strings.TrimSpace(string(raw))); err != nil {
			return "", fmt.Errorf("demo station key %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		if id, err = age.GenerateX25519Identity(); err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(id.String()+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("writing the demo station key: %w", err)
		}
	default:
		return "", fmt.Errorf("demo station key: %w", err)
	}
	a := c.Authority(config.DemoAuthority(demoStationCountry))
	if a == nil {
		return "", fmt.Errorf("the demo has no authority for %s", demoStationCountry)
	}
	a.AgeRecipient = id.Recipient().String()
	return path, nil
}

// writeDemoStation writes data/demo-station.yaml: a station for the
// German demo authority against this relay, whose users duty1 (analyst)
// and lead (lead) sign in with $NR_STATION_PASSWORD.
func writeDemoStation(data, relayURL, keyFile, password string) (string, error) {
	hash, err := web.HashPassword(password)
	if err != nil {
		return "", err
	}
	dir, err := filepath.Abs(filepath.Join(data, "station"))
	if err != nil {
		return "", err
	}
	doc := fmt.Sprintf(`# Written by `+"`noticerelay dev`"+` for the demo: a receiving station for %s.
# Run: . ./data/demo-tokens.env && noticerelay station --config data/%s
# Sign in as duty1 or lead with the password in $NR_STATION_PASSWORD.
# The pages name the authority as the relay does: %s national contact point (demo).
relay: {url: %s, token_env: NR_TOKEN_%s}
identity: %s
data: %s
http: {listen: %s}
users:
  - {id: duty1, name: Duty officer 1, password: %q, role: analyst}
  - {id: lead, name: Team lead, password: %q, role: lead}
`, config.DemoAuthority(demoStationCountry), demoStationConfig, demoStationCountry, relayURL, demoStationCountry,
		keyFile, dir, demoStationListen, hash, hash)
	path := filepath.Join(data, demoStationConfig)
	if err := durable.Replace(path, []byte(doc), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
