package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// LargeBody is the size from which a body takes turns (Turns): real
// notices, acknowledgements and withdrawals are far smaller.
const LargeBody = 64 << 10

// ReadBody reads r's body, at most limit bytes, under a read deadline of its
// own: timeout from now. Handlers read the body before they take any shared
// slot or share, so a caller that sends its body a byte at a time holds its
// own connection until the deadline, and nothing that other callers need.
//
// A body larger than LargeBody is read past that point only in its turn
// (turns, for caller; nil: at once), and the turn is held until release is
// called, so that a caller's flood of large bodies is read and parsed one
// at a time and costs a bounded share of memory and CPU. release is never
// nil and may be called more than once; body must not be used after it. On failure ReadBody returns the problem to answer: 413 over the
// limit, 408 past the deadline, 400 otherwise.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration, turns *Turns, caller string) (body []byte, release func(), p *Problem) {
	release = func() {}
	deadline := time.Now().Add(timeout)
	// Not every ResponseWriter can set deadlines (an httptest recorder
	// cannot); the server's read timeout still bounds those.
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
	in := http.MaxBytesReader(w, r.Body, limit)
	// The first part into a small buffer: a slow sender holds no more.
	body, err := readUpTo(in, make([]byte, 0, 4<<10), LargeBody)
	if err == nil && len(body) == LargeBody {
		if turns != nil {
			ctx, cancel := context.WithDeadline(r.Context(), deadline)
			release, err = turns.take(ctx, caller)
			cancel()
			var over *overShare
			if errors.As(err, &over) {
				w.Header().Set("Connection", "close")
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(over.retry.Seconds())))))
				return nil, func() {}, &Problem{Status: http.StatusTooManyRequests,
					Detail: "this caller sends large bodies faster than its share (limits.per_caller.large_body_rate); retry after the time in Retry-After"}
			}
			if err != nil {
				release = func() {}
				err = os.ErrDeadlineExceeded
			}
		}
		if err == nil {
			// The rest in one buffer of the limit's size: one of the few
			// that the turns reuse, or else a new one.
			var buf []byte
			if turns == nil {
				buf = make([]byte, 0, int(limit)+1)
			} else {
				buf = turns.buffer(int(limit) + 1)
				// Once: a second Put of the same buffer would hand it to
				// two requests at the same time.
				held := release
				var once sync.Once
				release = func() {
					once.Do(func() {
						turns.buffers.Put(&buf)
						held()
					})
				}
			}
			body, err = readUpTo(in, append(buf, body...), int(limit)+1)
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return body, release, nil
	case errors.As(err, &tooBig):
		p = &Problem{Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body is larger than %d bytes", limit)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection cannot be read any more: close it after the answer.
		w.Header().Set("Connection", "close")
		p = &Problem{Status: http.StatusRequestTimeout,
			Detail: fmt.Sprintf("the body did not arrive within %s", timeout)}
	default:
		p = &Problem{Status: http.StatusBadRequest, Detail: "could not read the body: " + err.Error()}
	}
	release()
	return nil, func() {}, p
}

// readUpTo appends what r yields to buf until EOF (nil error) or until buf
// holds n bytes, growing buf by doubling.
func readUpTo(r io.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf)+512, n))
			copy(grown, buf)
			buf = grown
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Turns are the turns large bodies take: one at a time per caller, at most
// a few at a time in all, and a caller's at most at a rate.
type Turns struct {
	all     chan struct{}
	rate    float64
	buffers sync.Pool // of *[]byte

	mu      sync.Mutex
	callers map[string]*callerTurns
}

type callerTurns struct {
	one  chan struct{}
	pace *rate.Limiter
}

// NewTurns returns turns for at most n large bodies at a time in all, and
// for at most perSecond large bodies a second of each caller.
func NewTurns(n int, perSecond float64) *Turns {
	return &Turns{all: make(chan struct{}, n), rate: perSecond, callers: map[string]*callerTurns{}}
}

// overShare is a large body that would have to wait past its deadline for
// its caller's pace: retry is when there would be room.
type overShare struct{ retry time.Duration }

func (o *overShare) Error() string {
	return fmt.Sprintf("over the large-body rate; retry in %s", o.retry)
}

// buffer returns an empty buffer of at least size bytes.
func (t *Turns) buffer(size int) []byte {
	if b, ok := t.buffers.Get().(*[]byte); ok && cap(*b) >= size {
		return (*b)[:0]
	}
	return make([]byte, 0, size)
}

// take waits for caller's turn, then for a turn in all. Callers are
// authenticated ids, so the table stays small.
func (t *Turns) take(ctx context.Context, caller string) (func(), error) {
	t.mu.Lock()
	c := t.callers[caller]
	if c == nil {
		c = &callerTurns{one: make(chan struct{}, 1), pace: rate.NewLimiter(rate.Limit(t.rate), max(1, int(math.Ceil(t.rate))))}
		t.callers[caller] = c
	}
	t.mu.Unlock()
	select {
	case c.one <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	now := time.Now()
	res := c.pace.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if dl, ok := ctx.Deadline(); ok && now.Add(delay).After(dl) {
		res.CancelAt(now)
		<-c.one
		return nil, &overShare{retry: delay}
	}
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		res.CancelAt(time.Now())
		<-c.one
		return nil, ctx.Err()
	}
	select {
	case t.all <- struct{}{}:
	case <-ctx.Done():
		<-c.one
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-t.all
			<-c.one
		})
	}, nil
}

// DecodeBody reads r's body (ReadBody, at most limit bytes) and decodes it
// into the struct v points to with the relay's strict JSON decoder
// (jsonbody.Decode, jsonbody.Small). On any problem it answers (400 with
// every field error, 413, 408) and returns false. what names the expected
// body in the answer, e.g. `{"reason": "..."}`.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any, limit int64, timeout time.Duration, what string) bool {
	body, _, p := ReadBody(w, r, limit, timeout, nil, "")
	if p != nil {
		WriteProblem(w, *p)
		return false
	}
	if errs := jsonbody.Decode(body, v, jsonbody.Small); len(errs) > 0 {
		BadRequest(w, "the body must be "+what, errs...)
		return false
	}
	return true
}
