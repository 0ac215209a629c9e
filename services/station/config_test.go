package station_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/noticerelay/noticerelay/services/station"
)

func TestConfigNamesEveryBadField(t *testing.T) {
	t.Setenv("NR_STATION_TOKEN", "authority-token-de-bka")
	t.Setenv("NR_EMPTY", "")
	dir := t.TempDir()
	id, _ := age.GenerateX25519Identity()
	key := filepath.Join(dir, "key")
	open := filepath.Join(dir, "open-key")
	if err := os.WriteFile(key, []byte(id.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(open, []byte(id.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	h := hashes()[0]
	good := fmt.Sprintf(`authority: Bundeskriminalamt
relay: {url: https://relay.example, token_env: NR_STATION_TOKEN}
identity: %s
data: %s
http: {listen: 127.0.0.1:9090}
users:
  - {id: duty1, name: Duty officer 1, password: %q, role: analyst}
  - {id: lead, name: Team lead, password: %q, role: lead}
`, key, dir, h, h)
	if _, err := station.ParseConfig([]byte(good)); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"plain http to a remote relay", "https://relay.example", "http://relay.example", "relay.url: "},
		{"http to loopback is fine", "https://relay.example", "http://127.0.0.1:8080", ""},
		{"relay url missing", "url: https://relay.example, ", "", "relay.url: is required"},
		{"token variable unset", "NR_STATION_TOKEN}", "NR_NOT_SET_ANYWHERE}", "relay.token_env: the environment variable NR_NOT_SET_ANYWHERE"},
		{"token variable empty", "NR_STATION_TOKEN}", "NR_EMPTY}", "relay.token_env: "},
		{"identity readable by others", "identity: " + key, "identity: " + open, "identity: "},
		{"identity missing", "identity: " + key, "identity: " + key + ".nope", "identity: "},
		{"no authority: the relay names it", "authority: Bundeskriminalamt\n", "", ""},
		{"authority too long", "authority: Bundeskriminalamt", "authority: " + strings.Repeat("B", 201), "authority: is longer"},
		{"bad user id", "id: duty1,", "id: Duty One,", "users[0].id: "},
		{"user without name", "name: Duty officer 1,", "name: '',", "users[0].name: is required"},
		{"no data", "data: " + dir + "\n", "", "data: is required"},
		{"bad listen", "127.0.0.1:9090", "nine", "http.listen: "},
		{"half tls", "http: {listen: 127.0.0.1:9090}", "http: {listen: 127.0.0.1:9090, tls: {cert_file: x}}", "http.tls.key_file: is required"},
		{"bad role", "role: analyst", "role: chief", "users[0].role: "},
		{"bad hash", fmt.Sprintf("password: %q, role: analyst", h), `password: "secret", role: analyst`, "users[0].password: "},
		{"duplicate user", "id: lead,", "id: duty1,", "users[1].id: "},
		{"no lead", "role: lead", "role: analyst", "users: at least one user must have role lead"},
		{"unknown field", "data: ", "dta: ", "dta: unknown field"},
		{"relay CA missing", "token_env: NR_STATION_TOKEN}", "token_env: NR_STATION_TOKEN, ca: " + key + ".nope}", "relay.ca: "},
		{"relay CA not PEM", "token_env: NR_STATION_TOKEN}", "token_env: NR_STATION_TOKEN, ca: " + key + "}", "relay.ca: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := station.ParseConfig([]byte(strings.Replace(good, tc.from, tc.to, 1)))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

// The configuration exactly as issue 13 shows it loads: no field beyond
// it is needed (the relay names the authority; see TestStationNamesItsAuthority).
func TestIssueExampleConfigLoads(t *testing.T) {
	t.Setenv("NR_STATION_TOKEN", "authority-token-de-bka")
	dir := t.TempDir()
	id, _ := age.GenerateX25519Identity()
	key := filepath.Join(dir, "authority.agekey")
	if err := os.WriteFile(key, []byte(id.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	example := `relay: {url: https://relay.example, token_env: NR_STATION_TOKEN}   # the authority's bearer token; https:// unless loopback
identity: /etc/noticerelay-station/authority.agekey                  # age identity, when the relay seals to this authority
data: /var/lib/noticerelay-station                                   # the station's own database
http: {listen: 127.0.0.1:9090}                                      # and tls: {cert_file, key_file} as for the relay
users:                                                               # analysts; passwords only as hashes
  - {id: duty1, name: Duty officer 1, password: "$argon2id$...", role: analyst}
  - {id: lead, name: Team lead, password: "$argon2id$...", role: lead}
`
	// Only the paths and the hashes are this machine's.
	h := hashes()
	yaml := strings.NewReplacer("/etc/noticerelay-station/authority.agekey", key, "/var/lib/noticerelay-station", filepath.Join(dir, "data")).Replace(example)
	yaml = strings.Replace(yaml, `"$argon2id$..."`, fmt.Sprintf("%q", h[0]), 1)
	yaml = strings.Replace(yaml, `"$argon2id$..."`, fmt.Sprintf("%q", h[1]), 1)
	c, err := station.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatalf("the issue's example: %v", err)
	}
	if c.Authority != "" || len(c.Users) != 2 || c.Users[1].Role != station.RoleLead {
		t.Fatalf("parsed: %+v", c)
	}
	// With the hashes as the issue writes them, the error names both fields.
	_, err = station.ParseConfig([]byte(strings.NewReplacer("/etc/noticerelay-station/authority.agekey", key).Replace(example)))
	if err == nil || !strings.Contains(err.Error(), "users[0].password: ") || !strings.Contains(err.Error(), "users[1].password: ") {
		t.Fatalf("placeholder hashes: %v", err)
	}
}
