// Package httpapi holds what every HTTP handler of the relay shares: JSON
// answers, RFC 9457 problem details, and the mapping of errors to status
// codes.
package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// FieldError is one problem with one field of a request.
type FieldError = jsonbody.FieldError

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// RetryAfter is the Retry-After value, in seconds, of 503 answers.
const RetryAfter = 2

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="noticerelay"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
}

// Error writes the problem an error means for the caller. Internal details
// of unexpected errors are logged, not shown.
func Error(w http.ResponseWriter, log *zap.Logger, err error) {
	status := fault.HTTPStatus(err)
	p := Problem{Status: status}
	switch fault.KindOf(err) {
	case fault.Unavailable:
		// Not logged one by one: an outage would flood the log. The relay
		// logs the store's state changes and counts the 503s (pkg/health).
		p.Detail = "the relay's store (NATS JetStream) is unavailable; retry after the time in Retry-After"
		log.Debug("store unavailable", zap.Error(err))
	case fault.Full:
		p.Detail = "the relay cannot store more right now: its store is full; retry after the time in Retry-After"
		log.Debug("store full", zap.Error(err))
	case fault.TooLarge:
		p.Detail = "the notice is larger than this deployment's NATS max_payload allows"
		log.Error("message larger than NATS max_payload; raise max_payload to at least 8MB", zap.Error(err))
	case fault.Internal, fault.Poison:
		p.Detail = "internal error; the request changed nothing that is not recorded"
		log.Error("internal error", zap.Error(err))
	default:
		var fe *fault.Error
		if e, ok := err.(*fault.Error); ok {
			fe = e
		}
		if fe != nil && fe.Err != nil {
			p.Detail = fe.Err.Error()
		}
	}
	WriteProblem(w, p)
}

// Unauthorized answers 401.
func Unauthorized(w http.ResponseWriter) {
	WriteProblem(w, Problem{Status: http.StatusUnauthorized,
		Detail: "missing or unknown bearer token"})
}

// NotFound answers 404.
func NotFound(w http.ResponseWriter, what string) {
	WriteProblem(w, Problem{Status: http.StatusNotFound, Detail: what + " not found"})
}

// BadRequest answers 400 with field errors.
func BadRequest(w http.ResponseWriter, detail string, errs ...FieldError) {
	WriteProblem(w, Problem{Status: http.StatusBadRequest, Detail: detail, Errors: errs})
}
