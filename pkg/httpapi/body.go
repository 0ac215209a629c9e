package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/noticerelay/noticerelay/pkg/jsonbody"
)

// ReadBody reads r's body, at most limit bytes, under a read deadline of its
// own: timeout from now. Handlers read the body before they take any shared
// slot or share, so a caller that sends its body a byte at a time holds its
// own connection until the deadline, and nothing that other callers need.
// On failure it returns the problem to answer: 413 over the limit, 408 past
// the deadline, 400 otherwise.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, *Problem) {
	// Not every ResponseWriter can set deadlines (an httptest recorder
	// cannot); the server's read timeout still bounds those.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return body, nil
	case errors.As(err, &tooBig):
		return nil, &Problem{Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the body is larger than %d bytes", limit)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection cannot be read any more: close it after the answer.
		w.Header().Set("Connection", "close")
		return nil, &Problem{Status: http.StatusRequestTimeout,
			Detail: fmt.Sprintf("the body did not arrive within %s", timeout)}
	}
	return nil, &Problem{Status: http.StatusBadRequest, Detail: "could not read the body: " + err.Error()}
}

// DecodeBody reads r's body (ReadBody, at most 64 KiB) and decodes it into
// the struct v points to with the relay's strict JSON decoder. On any
// problem it answers (400 with every field error, 413, 408) and returns
// false. what names the expected body in the answer, e.g.
// `{"reason": "..."}`.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any, timeout time.Duration, what string) bool {
	body, p := ReadBody(w, r, 64<<10, timeout)
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
