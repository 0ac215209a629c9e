package web

import (
	"fmt"

	"github.com/alexedwards/argon2id"
)

// passwordParams are RFC 9106's second recommended argon2id settings
// (64 MiB, 3 passes), with 2 lanes.
var passwordParams = &argon2id.Params{Memory: 64 * 1024, Iterations: 3, Parallelism: 2, SaltLength: 16, KeyLength: 32}

// HashPassword returns the argon2id hash of password in the PHC string
// form ($argon2id$v=19$m=...,t=...,p=...$salt$key) that configurations keep.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", fmt.Errorf("the password is empty")
	}
	h, err := argon2id.CreateHash(password, passwordParams)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return h, nil
}

// CheckPasswordHash reports whether hash is an argon2id hash this package
// can check, and why not.
func CheckPasswordHash(hash string) error {
	p, _, _, err := argon2id.DecodeHash(hash)
	if err != nil {
		return fmt.Errorf("not an argon2id hash such as `noticerelay passwd` prints: %w", err)
	}
	if p.Memory < 19*1024 || p.Iterations < 1 {
		return fmt.Errorf("argon2id settings too weak (m=%d KiB, t=%d): make it again with `noticerelay passwd`", p.Memory, p.Iterations)
	}
	return nil
}

// dummyHash is checked against when the user is unknown, so that an
// unknown user takes as long to refuse as a wrong password.
var dummyHash, _ = argon2id.CreateHash("not a password", passwordParams)

// passwordMatches reports whether password matches hash; an empty hash
// never matches, after the same work.
func passwordMatches(password, hash string) bool {
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(password, dummyHash)
		return false
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	return err == nil && ok
}

// PasswordMatches reports whether password matches the argon2id hash; an
// empty hash never matches, after the same work as a real one (so that an
// unknown user takes as long to refuse as a wrong password).
func PasswordMatches(password, hash string) bool { return passwordMatches(password, hash) }
