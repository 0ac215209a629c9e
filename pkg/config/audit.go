package config

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Auditor is a Digital Services Coordinator, data-protection authority or
// court that may fetch inclusion proofs (GET /v1/audit/proof).
type Auditor struct {
	ID     string  `yaml:"id"`
	Tokens []Token `yaml:"tokens"`
}

// pseudonymKeySize is the size of a pseudonym key (event.PseudonymKeySize).
const pseudonymKeySize = 32

// check validates the audit settings: the key files are readable and hold
// keys of the right format, the verifier key matches the signing key, and
// both are named by the origin. An empty origin takes the keys' name.
func (a *Audit) check(p *problems) {
	var signer note.Signer
	if a.SigningKey != "" {
		data, err := os.ReadFile(a.SigningKey)
		switch {
		case err != nil:
			p.add("audit.signing_key", "%v", err)
		default:
			if signer, err = note.NewSigner(strings.TrimSpace(string(data))); err != nil {
				p.add("audit.signing_key", "%s does not hold a signed-note signing key (PRIVATE+KEY+...; `noticerelay audit keygen` makes one)", a.SigningKey)
			}
		}
	}
	var verifier note.Verifier
	if a.VerifierKey != "" {
		v, err := note.NewVerifier(strings.TrimSpace(a.VerifierKey))
		if err != nil {
			p.add("audit.verifier_key", "not a signed-note verifier key (origin+hash+base64): %v", err)
		}
		verifier = v
	}
	if signer != nil && verifier != nil {
		probe := []byte("noticerelay audit key check\n")
		sig, err := signer.Sign(probe)
		if err != nil || signer.KeyHash() != verifier.KeyHash() || signer.Name() != verifier.Name() || !verifier.Verify(probe, sig) {
			p.add("audit.verifier_key", "does not match the key in audit.signing_key")
		}
	}
	for _, k := range []struct {
		field, name string
	}{{"audit.signing_key", nameOf(signer)}, {"audit.verifier_key", nameOf(verifier)}} {
		switch {
		case k.name == "":
		case a.Origin == "":
			a.Origin = k.name
		case a.Origin != k.name:
			p.add(k.field, "the key is named %q, not audit.origin %q: a checkpoint's origin is its key's name", k.name, a.Origin)
		}
	}
	if a.Origin != "" && (strings.ContainsAny(a.Origin, "+ \t\n") || !isPrint(a.Origin)) {
		p.add("audit.origin", "%q is not a log origin such as example.org/noticerelay (no spaces or '+')", a.Origin)
	}
	if a.PseudonymKey != "" {
		data, err := os.ReadFile(a.PseudonymKey)
		if err != nil {
			p.add("audit.pseudonym_key", "%v", err)
		} else if key, err := hex.DecodeString(string(bytes.TrimSpace(data))); err != nil || len(key) != pseudonymKeySize {
			p.add("audit.pseudonym_key", "%s must hold %d bytes as hex", a.PseudonymKey, pseudonymKeySize)
		}
	}
}

func nameOf(k interface{ Name() string }) string {
	if k == nil {
		return ""
	}
	return k.Name()
}

func isPrint(s string) bool {
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}
