package event

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Pseudonyms turn notice ids into keyed pseudonyms (HMAC-SHA256, first 128
// bits in hex). The log names every notice by its pseudonym: the same notice
// always has the same one, but without the key nobody can tell which notice
// it is, nor test a guess.
type Pseudonyms struct {
	key []byte
}

// PseudonymKeySize is the size of a pseudonym key in bytes.
const PseudonymKeySize = 32

// NewPseudonyms returns the pseudonyms of key.
func NewPseudonyms(key []byte) *Pseudonyms {
	return &Pseudonyms{key: append([]byte(nil), key...)}
}

// Notice returns the pseudonym of notice id.
func (p *Pseudonyms) Notice(id string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("noticerelay notice\x00"))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
