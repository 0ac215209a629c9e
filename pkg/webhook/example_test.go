package webhook_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/webhook"
)

// receiver is the documented receiver (docs/delivery.md): it verifies each
// request, refuses forged, altered and stale ones, and acts on each signed
// delivery id once. acted counts what it acted on, per delivery id.
func receiver(secret []byte, now func() time.Time) (http.Handler, map[string]int) {
	var mu sync.Mutex
	acted := map[string]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		signed, err := webhook.Verify(secret, r.Header, body, now(), webhook.DefaultReplayWindow)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized) // forged, altered or replayed
			return
		}
		mu.Lock()
		defer mu.Unlock()
		// Deduplicate on the signed id only: store the delivery durably
		// under signed.Delivery (keyed, idempotent), then answer 2xx.
		if acted[signed.Delivery] == 0 {
			acted[signed.Delivery]++
		}
		w.WriteHeader(http.StatusNoContent)
	}), acted
}

// A receiver verifies each request, refuses stale or forged ones, and
// acts on each delivery id once.
func Example() {
	secret := []byte("a-shared-secret-of-32-characters")
	handler, _ := receiver(secret, time.Now)
	post := func(sign func(h http.Header, body []byte), body string) int {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		sign(req.Header, []byte(body))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	d1 := webhook.Signed{Delivery: "d1", Type: "notice", Timestamp: time.Now()}
	fmt.Println(post(func(h http.Header, b []byte) { webhook.Sign(h, secret, d1, b) }, `{"id":"d1"}`))
	fmt.Println(post(func(h http.Header, b []byte) {
		webhook.Sign(h, []byte("another-secret-another-secret!!!"), d1, b)
	}, `{"id":"d1"}`))
	// Output:
	// 204
	// 401
}

// A captured request replayed as it was is acted on once; replayed with
// another delivery id or type it fails verification (finding 13 of issue
// 10: the id a receiver deduplicates on used to be unsigned, so a replay
// under a predicted future id made the receiver drop that delivery); once
// outside the replay window it is refused.
func TestReceiverRefusesReplays(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	clock := now
	handler, acted := receiver(secret, func() time.Time { return clock })
	body := `{"id":"a","type":"notice"}`
	captured := httptest.NewRequest("POST", "/", nil).Header
	webhook.Sign(captured, secret, webhook.Signed{Delivery: "a", Type: "notice", Timestamp: now}, []byte(body))
	replay := func(mutate func(h http.Header)) int {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header = captured.Clone()
		mutate(req.Header)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code
	}
	same := func(http.Header) {}
	if code := replay(same); code != http.StatusNoContent {
		t.Fatalf("original: %d", code)
	}
	if code := replay(same); code != http.StatusNoContent {
		t.Fatalf("exact repeat: %d, want 204 (a repeat is answered 2xx again)", code)
	}
	if code := replay(func(h http.Header) { h.Set(webhook.HeaderDelivery, "b") }); code != http.StatusUnauthorized {
		t.Errorf("replay with a swapped %s: %d, want 401", webhook.HeaderDelivery, code)
	}
	if code := replay(func(h http.Header) { h.Set(webhook.HeaderType, "withdrawal") }); code != http.StatusUnauthorized {
		t.Errorf("replay with a swapped %s: %d, want 401", webhook.HeaderType, code)
	}
	clock = now.Add(webhook.DefaultReplayWindow + time.Second)
	if code := replay(same); code != http.StatusUnauthorized {
		t.Errorf("replay after the window: %d, want 401", code)
	}
	if len(acted) != 1 || acted["a"] != 1 {
		t.Errorf("acted on %v, want a once", acted)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_800_000_000, 0)
	signed := webhook.Signed{Delivery: "x", Type: "notice", Timestamp: now}
	tests := []struct {
		name   string
		mutate func(h http.Header, body []byte) []byte
		want   error
	}{
		{"valid", func(h http.Header, b []byte) []byte { return b }, nil},
		{"body changed", func(h http.Header, b []byte) []byte { return []byte(`{"id":"y"}`) }, webhook.ErrSignature},
		{"delivery id changed", func(h http.Header, b []byte) []byte { h.Set(webhook.HeaderDelivery, "y"); return b }, webhook.ErrSignature},
		{"type changed", func(h http.Header, b []byte) []byte { h.Set(webhook.HeaderType, "escalation"); return b }, webhook.ErrSignature},
		{"timestamp changed", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderTimestamp, "1800000001")
			return b
		}, webhook.ErrSignature},
		{"id and type moved across the line break", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderDelivery, "x\nnotice")
			h.Set(webhook.HeaderType, "")
			return b
		}, webhook.ErrMissing},
		{"wrong secret", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderSignature, webhook.Signature([]byte("other"), signed, b))
			return b
		}, webhook.ErrSignature},
		{"rotation: second value matches", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderSignature, "v2=00,"+h.Get(webhook.HeaderSignature))
			return b
		}, nil},
		{"version 1 (body only) is not accepted", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderSignature, strings.Replace(h.Get(webhook.HeaderSignature), "v2=", "v1=", 1))
			return b
		}, webhook.ErrSignature},
		{"missing signature", func(h http.Header, b []byte) []byte { h.Del(webhook.HeaderSignature); return b }, webhook.ErrMissing},
		{"missing delivery id", func(h http.Header, b []byte) []byte { h.Del(webhook.HeaderDelivery); return b }, webhook.ErrMissing},
		{"missing type", func(h http.Header, b []byte) []byte { h.Del(webhook.HeaderType); return b }, webhook.ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			webhook.Sign(h, secret, signed, body)
			b := tt.mutate(h, body)
			got, err := webhook.Verify(secret, h, b, now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err == nil && got != signed {
				t.Fatalf("Verify returned %+v, want %+v", got, signed)
			}
		})
	}
	h := http.Header{}
	webhook.Sign(h, secret, signed, body)
	if _, err := webhook.Verify(secret, h, body, now.Add(6*time.Minute), 0); err != webhook.ErrStale {
		t.Fatalf("replay after 6 min: %v, want ErrStale", err)
	}
	if _, err := webhook.Verify(secret, h, body, now.Add(-6*time.Minute), 0); err != webhook.ErrStale {
		t.Fatalf("timestamp from the future: %v, want ErrStale", err)
	}
}
