package auditlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/noticerelay/noticerelay/pkg/durable"
)

// Checkpoint is a signed checkpoint of the log: a C2SP signed note whose
// text is the origin, the tree size and the base64 root hash.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	// Note is the signed note exactly as published.
	Note []byte
}

// Sign makes the signed checkpoint of a tree of size leaves with root. The
// origin is the signer's key name.
func Sign(s note.Signer, size uint64, root []byte) (*Checkpoint, error) {
	text := log.Checkpoint{Origin: s.Name(), Size: size, Hash: root}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint of size %d: %w", size, err)
	}
	return &Checkpoint{Origin: s.Name(), Size: size, Root: root, Note: signed}, nil
}

// Open verifies a signed checkpoint with v (whose key name is the log's
// origin) and parses it.
func Open(signed []byte, v note.Verifier) (*Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return nil, err
	}
	if len(cp.Hash) != HashSize {
		return nil, fmt.Errorf("checkpoint root hash has %d bytes, not %d", len(cp.Hash), HashSize)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: signed}, nil
}

// NewSigner parses a signed-note private key ("PRIVATE+KEY+origin+...").
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("not a signed-note signing key: %w", err)
	}
	return s, nil
}

// NewVerifier parses a signed-note verifier key ("origin+hash+base64").
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("not a signed-note verifier key: %w", err)
	}
	return v, nil
}

// ReadSigner reads a signing key file.
func ReadSigner(path string) (note.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := NewSigner(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// VerifierKey returns the verifier key that matches the signing key skey.
func VerifierKey(skey string) (string, error) {
	// skey is PRIVATE+KEY+<name>+<hash>+<base64(alg byte || seed)>.
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a signed-note signing key")
	}
	b, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(b) != 1+ed25519.SeedSize || b[0] != 1 {
		return "", errors.New("not an Ed25519 signed-note signing key")
	}
	pub := ed25519.NewKeyFromSeed(b[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// Matches reports whether verifier v accepts what signer s signs.
func Matches(s note.Signer, v note.Verifier) bool {
	if s.Name() != v.Name() || s.KeyHash() != v.KeyHash() {
		return false
	}
	msg := []byte("noticerelay audit key check\n")
	sig, err := s.Sign(msg)
	return err == nil && v.Verify(msg, sig)
}

// Key file names written by GenerateKeys.
const (
	SigningKeyFile   = "audit-signing.key"
	VerifierKeyFile  = "audit-verifier.key"
	PseudonymKeyFile = "pseudonym.key"
)

// GenerateKeys makes a new Ed25519 signing key for origin, writes it to
// dir/audit-signing.key (mode 0600) and its verifier key to
// dir/audit-verifier.key, and returns the verifier key. It refuses to
// overwrite a key.
func GenerateKeys(dir, origin string) (skeyPath, vkey string, err error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fmt.Errorf("origin %q: %w (an origin is a name such as example.org/noticerelay, without spaces or '+')", origin, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	skeyPath = filepath.Join(dir, SigningKeyFile)
	if err := writeNew(skeyPath, skey+"\n", 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(filepath.Join(dir, VerifierKeyFile), vkey+"\n", 0o644); err != nil {
		return "", "", err
	}
	return skeyPath, vkey, nil
}

// writeNew writes a file that must not exist yet, and syncs it.
func writeNew(path, content string, mode os.FileMode) error {
	return durable.WriteNew(path, []byte(content), mode)
}

// sameRoot compares root hashes.
func sameRoot(a, b []byte) bool { return bytes.Equal(a, b) }
