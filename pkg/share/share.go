// Package share gives each caller of the relay's API (a platform, an
// authority, an auditor) its own share of the relay: a request rate and a
// number of requests in progress. A caller over its share gets 429 with
// Retry-After; the others do not notice it. A platform's urgent notices
// have a share of their own, so its normal traffic never refuses one.
package share

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
)

// Class separates the shares of one caller.
type Class uint8

// Classes of request.
const (
	// Normal is every request but urgent notices.
	Normal Class = iota
	// Urgent is the submission of a notice with imminent_threat true.
	Urgent
)

// Shares are the shares of every caller of one process.
type Shares struct {
	cfg config.PerCaller
	now func() time.Time

	mu      sync.Mutex
	callers map[key]*caller
}

type key struct {
	caller string
	class  Class
}

type caller struct {
	limiter  *rate.Limiter
	inFlight int
}

// New returns the shares that cfg describes. now is the clock.
func New(cfg config.PerCaller, now func() time.Time) *Shares {
	return &Shares{cfg: cfg, now: now, callers: map[key]*caller{}}
}

// Take takes one request of caller in class: it returns a release function
// to call when the request is done, or, when the caller is over its share,
// ok false and how long to wait before trying again. Callers are
// authenticated ids from the configuration, so the table stays small.
func (s *Shares) Take(id string, class Class) (release func(), retry time.Duration, ok bool) {
	now := s.now()
	k := key{id, class}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.callers[k]
	if c == nil {
		c = &caller{limiter: rate.NewLimiter(rate.Limit(s.cfg.Rate), s.cfg.Burst)}
		s.callers[k] = c
	}
	if c.inFlight >= s.cfg.Concurrency {
		return nil, time.Second, false
	}
	r := c.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d, false
	}
	c.inFlight++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			c.inFlight--
			s.mu.Unlock()
		})
	}, 0, true
}

// Admit takes one request of caller in class (Take) or answers 429 with
// Retry-After and returns ok false.
func (s *Shares) Admit(w http.ResponseWriter, id string, class Class) (release func(), ok bool) {
	release, retry, ok := s.Take(id, class)
	if !ok {
		TooMany(w, retry)
	}
	return release, ok
}

// TooMany answers 429 with Retry-After in whole seconds, at least 1.
func TooMany(w http.ResponseWriter, retry time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
	httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusTooManyRequests,
		Detail: "this caller is over its share of the relay (limits.per_caller); retry after the time in Retry-After"})
}
