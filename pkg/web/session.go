package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"
)

// ErrNoSession is what a SessionStore answers for a key it does not hold
// or whose session has expired.
var ErrNoSession = errors.New("no such session")

// Session is a signed-in user's session. Key is the SHA-256 of the cookie
// value: a copy of the store does not let anyone sign in.
type Session struct {
	Key     string
	User    string
	CSRF    string
	Created time.Time
	Expires time.Time
}

// SessionStore keeps sessions durably (the station keeps them in its
// SQLite file).
type SessionStore interface {
	SaveSession(ctx context.Context, s Session) error
	// Session returns the session with key unless it expired by now.
	Session(ctx context.Context, key string, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, key string) error
}

// sessionCookie names the session cookie.
const sessionCookie = "nr_session"

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// startSession makes a new session for user and sets its cookie.
func (a *App) startSession(w http.ResponseWriter, r *http.Request, user string) (Session, error) {
	value := randomToken()
	now := a.now()
	s := Session{Key: sessionKey(value), User: user, CSRF: randomToken(), Created: now, Expires: now.Add(a.SessionTTL)}
	if err := a.Sessions.SaveSession(r.Context(), s); err != nil {
		return s, err
	}
	http.SetCookie(w, a.cookie(sessionCookie, value, a.SessionTTL))
	return s, nil
}

// session returns the request's valid session, if any.
func (a *App) session(r *http.Request) (Session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return Session{}, false
	}
	s, err := a.Sessions.Session(r.Context(), sessionKey(c.Value), a.now())
	if err != nil {
		return Session{}, false
	}
	return s, true
}

// cookie is a cookie of this application: HttpOnly, SameSite=Strict,
// Secure when served over TLS.
func (a *App) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: a.cookiePath(), HttpOnly: true, Secure: a.Secure, SameSite: http.SameSiteStrictMode}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// cookiePath scopes the application's cookies to its base path.
func (a *App) cookiePath() string {
	if a.Base == "" {
		return "/"
	}
	return a.Base
}
