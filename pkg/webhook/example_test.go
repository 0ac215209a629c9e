package webhook_test

import (
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

// A receiver verifies each request, refuses stale or forged ones, and
// acts on each delivery id once.
func Example() {
	secret := []byte("a-shared-secret-of-32-characters")
	var mu sync.Mutex
	seen := map[string]bool{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultReplayWindow); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get(webhook.HeaderDelivery)
		if !seen[id] {
			seen[id] = true // store the delivery durably here, then answer 2xx
		}
		w.WriteHeader(http.StatusNoContent)
	})

	body := []byte(`{"id":"d1"}`)
	req := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
	req.Header.Set(webhook.HeaderDelivery, "d1")
	webhook.Sign(req.Header, secret, time.Now(), body)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	forged := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
	forged.Header.Set(webhook.HeaderDelivery, "d1")
	webhook.Sign(forged.Header, []byte("another-secret-another-secret!!!"), time.Now(), body)
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, forged)
	fmt.Println(rec.Code)
	// Output:
	// 204
	// 401
}

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		mutate func(h http.Header, body []byte) []byte
		want   error
	}{
		{"valid", func(h http.Header, b []byte) []byte { return b }, nil},
		{"body changed", func(h http.Header, b []byte) []byte { return []byte(`{"id":"y"}`) }, webhook.ErrSignature},
		{"timestamp changed", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderTimestamp, "1800000001")
			return b
		}, webhook.ErrSignature},
		{"wrong secret", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderSignature, webhook.Signature([]byte("other"), now, b))
			return b
		}, webhook.ErrSignature},
		{"rotation: second value matches", func(h http.Header, b []byte) []byte {
			h.Set(webhook.HeaderSignature, "v1=00,"+h.Get(webhook.HeaderSignature))
			return b
		}, nil},
		{"missing", func(h http.Header, b []byte) []byte { h.Del(webhook.HeaderSignature); return b }, webhook.ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			webhook.Sign(h, secret, now, body)
			b := tt.mutate(h, body)
			if err := webhook.Verify(secret, h, b, now, 0); err != tt.want {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	h := http.Header{}
	webhook.Sign(h, secret, now, body)
	if err := webhook.Verify(secret, h, body, now.Add(6*time.Minute), 0); err != webhook.ErrStale {
		t.Fatalf("replay after 6 min: %v, want ErrStale", err)
	}
	if err := webhook.Verify(secret, h, body, now.Add(-6*time.Minute), 0); err != webhook.ErrStale {
		t.Fatalf("timestamp from the future: %v, want ErrStale", err)
	}
}
