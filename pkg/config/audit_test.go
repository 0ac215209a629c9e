package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crypto/rand"
	"golang.org/x/mod/sumdb/note"

	"github.com/noticerelay/noticerelay/pkg/config"
)

const auditBase = `
platforms:
  - {id: examplenet, name: ExampleNet, tokens: ["sha256:` + "0000000000000000000000000000000000000000000000000000000000000001" + `"], establishment: IE}
authorities:
  - {id: de-bka, country: DE, name: BKA, tokens: ["sha256:` + "0000000000000000000000000000000000000000000000000000000000000002" + `"]}
`

// The audit keys are checked at load: readable files, key formats, a
// verifier that matches the signer, one origin; auditors have tokens.
func TestAuditConfig(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.org/relay")
	_, otherV, _ := note.GenerateKey(rand.Reader, "example.org/relay")
	sk := filepath.Join(dir, "signing.key")
	pk := filepath.Join(dir, "pseudonym.key")
	os.WriteFile(sk, []byte(skey+"\n"), 0o600)
	os.WriteFile(pk, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("nonsense\n"), 0o600)

	good := auditBase + "audit: {signing_key: " + sk + ", verifier_key: \"" + vkey + "\", pseudonym_key: " + pk + "}\n" +
		"auditors: [{id: dsc-ie, tokens: [\"sha256:" + strings.Repeat("3", 64) + "\"]}]\n"
	c, err := config.Parse([]byte(good), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Audit.Origin != "example.org/relay" || len(c.Auditors) != 1 || c.Auditors[0].ID != "dsc-ie" {
		t.Fatalf("%+v %+v", c.Audit, c.Auditors)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"audit: {signing_key: /nonexistent/key}", "audit.signing_key: "},
		{"audit: {signing_key: " + bad + "}", "audit.signing_key: "},
		{"audit: {verifier_key: \"nope\"}", "audit.verifier_key: "},
		{"audit: {signing_key: " + sk + ", verifier_key: \"" + otherV + "\"}", "audit.verifier_key: does not match"},
		{"audit: {origin: other.org/x, signing_key: " + sk + "}", "audit.signing_key: the key is named"},
		{"audit: {pseudonym_key: " + bad + "}", "audit.pseudonym_key: "},
		{"audit: {origin: \"a b\"}", "audit.origin: "},
		{"auditors: [{id: X, tokens: []}]", "auditors[0].id: "},
		{"auditors: [{id: dsc, tokens: []}]", "auditors[0].tokens: "},
	} {
		_, err := config.Parse([]byte(auditBase+tc.yaml+"\n"), config.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.yaml, tc.want, err)
		}
	}
}
