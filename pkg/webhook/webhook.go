// Package webhook signs the relay's push deliveries and verifies them on
// the receiving side. A request carries
//
//	X-Noticerelay-Delivery:  <delivery id>
//	X-Noticerelay-Type:      <delivery type: notice, withdrawal or escalation>
//	X-Noticerelay-Timestamp: <Unix seconds when this attempt was signed>
//	X-Noticerelay-Signature: v2=<hex HMAC-SHA256(secret, signed string)>
//
// where the signed string (version 2) is the four lines
//
//	v2 LF timestamp LF delivery id LF type LF
//
// followed by the raw body. The delivery id, the type and the timestamp
// are signed with the body, so a captured request cannot be replayed
// under another delivery id (to make a receiver drop the real one as a
// repeat) or outside the replay window. Version 1 signed only the
// timestamp and the body; it is neither sent nor accepted.
//
// A receiver calls Verify, which compares the signature in constant time
// and refuses a timestamp outside its replay window (default 5 minutes
// either way), and deduplicates on the Signed.Delivery it returns: never
// on a header it read itself.
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
	HeaderType      = "X-Noticerelay-Type"
	HeaderTimestamp = "X-Noticerelay-Timestamp"
	HeaderSignature = "X-Noticerelay-Signature"
	// HeaderAttempt (1, 2, ...) is informational and not signed.
	HeaderAttempt = "X-Noticerelay-Attempt"
)

// Version is the signature scheme's version, the prefix of its values.
const Version = "v2"

// DefaultReplayWindow is how far a timestamp may be from the receiver's
// clock, either way.
const DefaultReplayWindow = 5 * time.Minute

// Errors of Verify.
var (
	ErrMissing   = errors.New("webhook: missing or malformed delivery, type, timestamp or signature header")
	ErrStale     = errors.New("webhook: timestamp outside the replay window")
	ErrSignature = errors.New("webhook: signature does not match")
)

// Signed is what a signature covers besides the body.
type Signed struct {
	Delivery  string    // the delivery id, stable across retries and redrives
	Type      string    // notice, withdrawal or escalation
	Timestamp time.Time // when this attempt was signed (whole seconds)
}

// Signature returns the X-Noticerelay-Signature value of body and s.
func Signature(secret []byte, s Signed, body []byte) string {
	return Version + "=" + hex.EncodeToString(mac(secret, strconv.FormatInt(s.Timestamp.Unix(), 10), s.Delivery, s.Type, body))
}

// mac is the HMAC of the version 2 signed string.
func mac(secret []byte, ts, id, typ string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	for _, line := range []string{Version, ts, id, typ} {
		h.Write([]byte(line))
		h.Write([]byte{'\n'})
	}
	h.Write(body)
	return h.Sum(nil)
}

// Sign sets the delivery, type, timestamp and signature headers of a
// request with body.
func Sign(h http.Header, secret []byte, s Signed, body []byte) {
	h.Set(HeaderDelivery, s.Delivery)
	h.Set(HeaderType, s.Type)
	h.Set(HeaderTimestamp, strconv.FormatInt(s.Timestamp.Unix(), 10))
	h.Set(HeaderSignature, Signature(secret, s, body))
}

// Verify checks that body and the delivery, type and timestamp headers
// were signed with secret no further than window (DefaultReplayWindow
// when 0) from now, and returns what was signed. The signature header may
// list several comma-separated v2= values (during a secret rotation); one
// match suffices.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, window time.Duration) (Signed, error) {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	id, typ := header.Get(HeaderDelivery), header.Get(HeaderType)
	ts, sig := header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || typ == "" || ts == "" || sig == "" || strings.ContainsAny(id+typ, "\r\n") {
		return Signed{}, ErrMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Signed{}, fmt.Errorf("%w: bad timestamp %q", ErrMissing, ts)
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > window || d < -window {
		return Signed{}, ErrStale
	}
	want := mac(secret, ts, id, typ, body)
	for _, v := range strings.Split(sig, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(v), Version+"=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			return Signed{Delivery: id, Type: typ, Timestamp: at}, nil
		}
	}
	return Signed{}, ErrSignature
}
