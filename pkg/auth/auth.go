// Package auth checks bearer tokens against the SHA-256 digests in the
// configuration.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/config"
)

// Role is what a caller is.
type Role string

// Roles.
const (
	Platform  Role = "platform"
	Authority Role = "authority"
	Auditor   Role = "auditor"
)

// Principal is an authenticated caller.
type Principal struct {
	Role Role
	ID   string
}

type entry struct {
	digest config.Token
	who    Principal
}

// Directory maps token digests to principals.
type Directory struct {
	entries []entry
}

// NewDirectory builds the directory of every token in c.
func NewDirectory(c *config.Config) *Directory {
	d := &Directory{}
	for _, p := range c.Platforms {
		for _, t := range p.Tokens {
			d.entries = append(d.entries, entry{t, Principal{Platform, p.ID}})
		}
	}
	for _, a := range c.Authorities {
		for _, t := range a.Tokens {
			d.entries = append(d.entries, entry{t, Principal{Authority, a.ID}})
		}
	}
	for _, a := range c.Auditors {
		for _, t := range a.Tokens {
			d.entries = append(d.entries, entry{t, Principal{Auditor, a.ID}})
		}
	}
	return d
}

// Lookup returns the principal of a plain token. It compares the token's
// digest with every entry in constant time, so timing reveals nothing about
// which tokens exist.
func (d *Directory) Lookup(token string) (Principal, bool) {
	sum := sha256.Sum256([]byte(token))
	var found Principal
	ok := 0
	for _, e := range d.entries {
		if subtle.ConstantTimeCompare(sum[:], e.digest[:]) == 1 {
			found, ok = e.who, 1
		}
	}
	return found, ok == 1
}

// Known reports whether r carries a valid token of any role: a caller the
// relay knows but who asks for something that is not theirs gets 404, not 401.
func (d *Directory) Known(r *http.Request) bool {
	if _, ok := r.Context().Value(principalKey{}).(Principal); ok {
		return true
	}
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	_, ok := d.Lookup(strings.TrimSpace(token))
	return ok
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p as the caller of a request made
// inside the process: the portal calls the API's own handlers for a
// signed-in person, who holds no bearer token (a token is kept only as
// its digest). Only code in the process can set it; a request from the
// network never carries it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromRequest authenticates r's "Authorization: Bearer" header (or the
// principal of an in-process request, WithPrincipal) as a principal of
// role.
func (d *Directory) FromRequest(r *http.Request, role Role) (Principal, bool) {
	if p, ok := r.Context().Value(principalKey{}).(Principal); ok {
		return p, p.Role == role
	}
	h := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, false
	}
	p, ok := d.Lookup(strings.TrimSpace(token))
	if !ok || p.Role != role {
		return Principal{}, false
	}
	return p, true
}
