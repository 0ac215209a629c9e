// Package webhook signs the relay's push deliveries and verifies them on
// the receiving side. A request carries
//
//	X-Noticerelay-Delivery:  <delivery id>
//	X-Noticerelay-Timestamp: <Unix seconds when this attempt was signed>
//	X-Noticerelay-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver recomputes the HMAC over the raw body, compares it in
// constant time, refuses a timestamp outside its replay window (default 5
// minutes either way), and treats a delivery id it has seen before as a
// repeat to answer 2xx again without acting twice. Verify does the first
// two; the receiver keeps the ids.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderDelivery  = "X-Noticerelay-Delivery"
	HeaderTimestamp = "X-Noticerelay-Timestamp"
	HeaderSignature = "X-Noticerelay-Signature"
	HeaderAttempt   = "X-Noticerelay-Attempt"
)

// DefaultReplayWindow is how far a timestamp may be from the receiver's
// clock, either way.
const DefaultReplayWindow = 5 * time.Minute

// Errors of Verify.
var (
	ErrMissing   = errors.New("webhook: missing timestamp or signature header")
	ErrStale     = errors.New("webhook: timestamp outside the replay window")
	ErrSignature = errors.New("webhook: signature does not match")
)

// Signature returns the X-Noticerelay-Signature value of body signed at ts.
func Signature(secret []byte, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign sets the timestamp and signature headers of a request with body.
func Sign(h http.Header, secret []byte, now time.Time, body []byte) {
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, Signature(secret, now, body))
}

// Verify checks that body and header were signed with secret no further
// than window (DefaultReplayWindow when 0) from now. The signature header
// may list several comma-separated v1= values (during a secret rotation);
// one match suffices.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	ts, sig := header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return ErrMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp %q", ErrMissing, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, v := range strings.Split(sig, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(v), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
