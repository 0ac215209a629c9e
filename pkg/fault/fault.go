// Package fault gives errors a kind that callers branch on: one place
// decides what an error means for an HTTP answer or a JetStream message.
package fault

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is what went wrong, from the caller's point of view.
type Kind int

// Kinds of error.
const (
	Internal    Kind = iota // a bug or an unexpected failure
	Invalid                 // the request is malformed; retrying will not help
	NotFound                // no such thing, or not the caller's
	Conflict                // the request contradicts stored state
	Exists                  // the thing was stored before (idempotent no-op)
	Unavailable             // the store cannot answer now (NATS or JetStream down, no quorum, timeout); retry later
	Poison                  // a stored message that can never be processed
	TooLarge                // larger than the deployment can carry
	Full                    // the store is at its configured limits; retry later
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Exists:
		return "exists"
	case Unavailable:
		return "unavailable"
	case Poison:
		return "poison"
	case TooLarge:
		return "too large"
	case Full:
		return "full"
	}
	return "internal"
}

// Error is an error with a kind and the operation that failed.
type Error struct {
	Op   string
	Kind Kind
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Op + ": " + e.Kind.String()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// E wraps err with an operation and a kind.
func E(op string, k Kind, err error) error { return &Error{Op: op, Kind: k, Err: err} }

// Errorf makes a new error of kind k.
func Errorf(op string, k Kind, format string, args ...any) error {
	return &Error{Op: op, Kind: k, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the kind of the outermost fault.Error in err's chain, or
// Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// HTTPStatus maps an error to the status code a client should see.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case Invalid:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case Exists:
		return http.StatusOK
	case Unavailable, Full:
		return http.StatusServiceUnavailable
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}
