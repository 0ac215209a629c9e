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
		{"no authority", "authority: Bundeskriminalamt\n", "", "authority: is required"},
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
