package web

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: Burst attempts at once, then one more every Every.
type Rate struct {
	Burst int
	Every time.Duration
}

// SignInLimit bounds sign-in attempts, right or wrong, per source address
// and per user name, so that a password cannot be guessed by trying: at
// the defaults a user name takes at most 5 attempts and then one every
// 30 s (some 2,900 a day), from any number of addresses. The price is that
// someone who knows a user name can keep that user waiting; an operator
// sees it in the log.
type SignInLimit struct {
	PerSource Rate
	PerUser   Rate
}

// DefaultSignInLimit is the limit of an App that sets none.
var DefaultSignInLimit = SignInLimit{PerSource: Rate{Burst: 20, Every: 6 * time.Second}, PerUser: Rate{Burst: 5, Every: 30 * time.Second}}

// maxLimited bounds each map of limiters: past it, full buckets (no
// recent attempts) are dropped.
const maxLimited = 10000

// signInLimiter holds the buckets; its zero value is ready.
type signInLimiter struct {
	mu      sync.Mutex
	sources map[string]*rate.Limiter
	users   map[string]*rate.Limiter
}

// allow takes one attempt from source's and user's buckets, or neither,
// and returns 0, or how long to wait when either is empty. A form that
// names no user (a token's sign-in: a token cannot be guessed) takes from
// the source's bucket only; one bucket shared by every such sign-in would
// let anyone keep everyone else out.
func (l *signInLimiter) allow(lim SignInLimit, source, user string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil {
		l.sources, l.users = map[string]*rate.Limiter{}, map[string]*rate.Limiter{}
	}
	s := bucket(l.sources, source, lim.PerSource, now)
	wait := need(s, lim.PerSource, now)
	var u *rate.Limiter
	if user != "" {
		u = bucket(l.users, user, lim.PerUser, now)
		wait = max(wait, need(u, lim.PerUser, now))
	}
	if wait > 0 {
		return wait
	}
	s.AllowN(now, 1)
	if u != nil {
		u.AllowN(now, 1)
	}
	return 0
}

func bucket(m map[string]*rate.Limiter, key string, r Rate, now time.Time) *rate.Limiter {
	if b, ok := m[key]; ok {
		return b
	}
	if len(m) >= maxLimited {
		for k, b := range m {
			if b.TokensAt(now) >= float64(b.Burst()) {
				delete(m, k)
			}
		}
	}
	b := rate.NewLimiter(rate.Every(r.Every), r.Burst)
	m[key] = b
	return b
}

// need is how long until b holds one token.
func need(b *rate.Limiter, r Rate, now time.Time) time.Duration {
	missing := 1 - b.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(missing * float64(r.Every)))
}

// source is the address a request came from (without port).
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
