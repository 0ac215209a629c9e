package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// TestEveryBodyIsStrict is finding 14 of issue 10: withdrawals and bulk
// acknowledgements were decoded leniently (invalid UTF-8 replaced, NUL and
// U+202E forwarded to police, duplicate keys with the last one winning).
// Every body (messages too) now goes through the one strict decoder, with
// field errors.
func TestEveryBodyIsStrict(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{})
	id := r.Submit("examplenet", relaytest.Notice("STRICT-1", false, "AT", "", ""))
	withdraw := "/v1/notices/" + id + "/withdraw"
	for _, tc := range []struct {
		name, path, who, body, field, msg string
	}{
		{"withdraw: invalid UTF-8", withdraw, "platform:examplenet", "{\"reason\": \"caf\xe9\"}", "", "is not valid UTF-8"},
		{"withdraw: NUL", withdraw, "platform:examplenet", `{"reason": "a\u0000b"}`, "reason", "control character"},
		{"withdraw: U+202E", withdraw, "platform:examplenet", `{"reason": "gnp.exe` + "\u202e" + `"}`, "reason", "U+202E"},
		{"withdraw: duplicate key", withdraw, "platform:examplenet", `{"reason": "a", "reason": "b"}`, "reason", "duplicate field"},
		{"withdraw: unknown field", withdraw, "platform:examplenet", `{"reason": "a", "why": "b"}`, "why", "unknown field"},
		{"withdraw: wrong type", withdraw, "platform:examplenet", `{"reason": 5}`, "reason", "must be a string"},
		{"ack: duplicate key", "/v1/inbox/ack", "authority:at-police", `{"ids": ["x"], "ids": ["y"]}`, "ids", "duplicate field"},
		{"ack: U+2066 in an id", "/v1/inbox/ack", "authority:at-police", `{"ids": ["a` + "\u2066" + `"]}`, "ids[0]", "U+2066"},
		{"ack: unknown field", "/v1/inbox/ack", "authority:at-police", `{"ids": ["x"], "all": true}`, "all", "unknown field"},
		{"ack: invalid UTF-8", "/v1/inbox/ack", "authority:at-police", "{\"ids\": [\"\xff\"]}", "", "is not valid UTF-8"},
		{"ack: too many ids", "/v1/inbox/ack", "authority:at-police", `{"ids": [` + strings.Repeat(`"x",`, 100) + `"x"]}`, "ids", "at most 100 items"},
		{"platform's message: duplicate key", "/v1/notices/" + id + "/messages", "platform:examplenet",
			`{"to": "at-police", "text": "a", "text": "b"}`, "text", "duplicate field"},
		{"authority's message: U+202E", "/v1/inbox/" + id + "/messages", "authority:at-police",
			`{"kind": "feedback", "text": "` + "\u202e" + `"}`, "text", "U+202E"},
		{"notice: U+202E", "/v1/notices", "platform:examplenet",
			`{"reference": "STRICT-2", "category": "other", "imminent_threat": false, "suspicion": "evil` + "\u202e" + `txt"}`, "suspicion", "U+202E"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.Do("POST", tc.path, tc.who, tc.body)
			var p struct {
				Errors []struct{ Field, Message string }
			}
			if resp.Status != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" || resp.JSON(&p) != nil {
				t.Fatalf("answer %s, want 400 problem+json", resp)
			}
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Message, tc.msg) {
				t.Errorf("errors %+v, want one at %q: ...%s...", p.Errors, tc.field, tc.msg)
			}
		})
	}
	// Nothing was withdrawn by any of them; a valid body still works.
	if st := r.Status("examplenet", id)["status"]; st == "withdrawn" {
		t.Fatal("a refused withdrawal withdrew the notice")
	}
	if resp := r.Do("POST", withdraw, "platform:examplenet", map[string]string{"reason": "sent in error"}); resp.Status != http.StatusAccepted {
		t.Fatalf("valid withdrawal: %s", resp)
	}
}

// TestSharesAnswer429AndSpareUrgent is finding 12 of issue 10: one
// platform's flood slowed every other platform down. Each caller now has a
// rate and concurrency share, is answered 429 with Retry-After beyond it,
// and its urgent notices have a share of their own.
func TestSharesAnswer429AndSpareUrgent(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Limits.PerCaller = config.PerCaller{Rate: 0.01, Burst: 3, Concurrency: 8}
	}})
	for i := range 3 {
		r.Submit("examplenet", relaytest.Notice(fmt.Sprintf("SHARE-%d", i), false, "AT", "", ""))
	}
	resp := r.Do("POST", "/v1/notices", "platform:examplenet", relaytest.Notice("SHARE-3", false, "AT", "", ""))
	if resp.Status != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("normal notice over the share: %s %v, want 429 with Retry-After", resp, resp.Header)
	}
	// Invalid bodies count against the share too.
	if resp := r.Do("POST", "/v1/notices", "platform:examplenet", `{"reference": "x"}`); resp.Status != http.StatusTooManyRequests {
		t.Fatalf("invalid notice over the share: %s, want 429", resp)
	}
	// The same platform's urgent notice is not refused because of them.
	r.Submit("examplenet", relaytest.Notice("SHARE-URGENT", true, "AT", "", ""))
	// Nor is another platform, nor an authority.
	r.Submit("othernet", relaytest.Notice("SHARE-OTHER", false, "AT", "", ""))
	if resp := r.Do("GET", "/v1/inbox", "authority:at-police", nil); resp.Status != http.StatusOK {
		t.Fatalf("inbox: %s", resp)
	}
}

// TestConcurrencyShare: requests in progress count against the caller's
// share; an urgent notice has its own.
func TestConcurrencyShare(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Limits.PerCaller = config.PerCaller{Rate: 1000, Burst: 1000, Concurrency: 1}
		c.HTTP.BodyTimeout = config.Duration(5 * time.Second)
	}})
	// An authority's acknowledgement whose body is still arriving holds
	// no share: bodies are read first.
	c := slowRequest(t, r.URL, "127.0.0.1", "POST /v1/inbox/ack", r.Tokens["authority:at-police"], 100)
	defer c.Close()
	if resp := r.Do("GET", "/v1/inbox", "authority:at-police", nil); resp.Status != http.StatusOK {
		t.Fatalf("inbox while a body arrives: %s", resp)
	}
}

// slowRequest opens a connection from the loopback address ip and sends
// the head of request line with a body of size bytes, but not the body.
func slowRequest(t *testing.T, base, ip, line, token string, size int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(c, "%s HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", line, token, size)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answered reports whether the relay has answered (or closed) c.
func answered(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestSlowBodiesHoldNothing is finding 10 of issue 10: the in-flight slot
// was taken before the body was read, so connections sending a byte at a
// time held every slot until the read timeout and every other platform got
// 503. Bodies are now read under their own deadline first (408 after it),
// and connections are capped per source.
func TestSlowBodiesHoldNothing(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Limits.MaxInFlight = 2
		c.Limits.MaxConnectionsPerSource = 6
		c.HTTP.BodyTimeout = config.Duration(2 * time.Second)
	}})
	tok := r.Tokens["platform:examplenet"]
	var conns []net.Conn
	for range 6 {
		conns = append(conns, slowRequest(t, r.URL, "127.0.0.2", "POST /v1/notices", tok, 1000))
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// A seventh from the same source is closed at once.
	extra := slowRequest(t, r.URL, "127.0.0.2", "POST /v1/notices", tok, 1000)
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil {
		t.Errorf("a connection over the per-source cap was served (%d bytes)", n)
	}
	extra.Close()
	// Six slow bodies, two in-flight slots: the other platform is served.
	start := time.Now()
	r.Submit("othernet", relaytest.Notice("SLOW-OTHER", false, "AT", "", ""))
	if d := time.Since(start); d > time.Second {
		t.Errorf("othernet's submission took %v", d)
	}
	// The slow ones get 408 at their deadline.
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(answer), "HTTP/1.1 408") {
				t.Errorf("slow body answered %.40q, want 408", answer)
			}
		})
	}
	wg.Wait()
}

// TestRejectionsAreCounted is finding 12 of issue 10: every invalid
// submission appended a permanent rejected event to the audit log. They
// are now counted per platform and window, one event each, with a count
// per reason; `audit replay` still counts every rejected submission.
func TestRejectionsAreCounted(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Audit.RejectionWindow = config.Duration(time.Hour)
	}})
	for i := range 40 {
		body := relaytest.Notice(fmt.Sprintf("REJ-%d", i), false, "AT", "", "")
		body["category"] = "nonsense"
		if i%2 == 1 {
			body["colour"] = "red"
		}
		if resp := r.Do("POST", "/v1/notices", "platform:examplenet", body); resp.Status != http.StatusBadRequest {
			t.Fatal(resp)
		}
	}
	if resp := r.Do("POST", "/v1/notices", "platform:othernet", `[]`); resp.Status != http.StatusBadRequest {
		t.Fatal(resp)
	}
	r.Submit("examplenet", relaytest.Notice("REJ-OK", false, "AT", "", ""))
	// The window is an hour long: the counts are recorded when the relay
	// stops (and at the end of each window).
	r.Stop()
	r.Restart()
	js, err := jetstream.New(r.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rejected []*event.Event
	err = auditlog.StreamLeaves{JS: js}.Each(ctx, func(_ uint64, data []byte) error {
		e, err := event.Decode(data)
		if err == nil && e.Type == event.Rejected {
			rejected = append(rejected, e)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	byPlatform := map[string]*event.Event{}
	for _, e := range rejected {
		if byPlatform[e.Platform] != nil {
			t.Errorf("two rejected events of %s in one window", e.Platform)
		}
		byPlatform[e.Platform] = e
	}
	ex, other := byPlatform["examplenet"], byPlatform["othernet"]
	if len(rejected) != 2 || ex == nil || other == nil {
		t.Fatalf("rejected events %+v, want one per platform", rejected)
	}
	if ex.Count != 40 || ex.ReasonCounts["invalid:category"] != 40 || ex.ReasonCounts["unknown_or_duplicate_field"] != 20 ||
		strings.Join(ex.Reasons, ",") != "invalid:category,unknown_or_duplicate_field" || !ex.Time.Equal(ex.Time.Truncate(time.Hour)) {
		t.Errorf("examplenet's rejections: %+v", ex)
	}
	if other.Count != 1 || other.ReasonCounts["malformed"] != 1 {
		t.Errorf("othernet's rejections: %+v", other)
	}
	rep, err := auditlog.RunReplay(ctx, auditlog.StreamLeaves{JS: js}, auditlog.ReplayOptions{At: time.Now().Add(time.Hour), Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rejected != 41 || rep.Accepted != 1 {
		t.Errorf("replay: %d rejected, %d accepted; want 41 and 1", rep.Rejected, rep.Accepted)
	}
}

// TestLargeBodiesTakeTurns: a platform's bodies over 64 KiB are read one at
// a time and at most at its large_body_rate; beyond it they get 429 before
// the rest of the body is read, while its small notices pass.
func TestLargeBodiesTakeTurns(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Limits.PerCaller.LargeBodyRate = 0.1
		c.HTTP.BodyTimeout = config.Duration(2 * time.Second)
	}})
	large := `{"reference": "LARGE", "x": [` + strings.Repeat("0,", 50000) + `0]}`
	if resp := r.Do("POST", "/v1/notices", "platform:examplenet", large); resp.Status != http.StatusBadRequest {
		t.Fatalf("first large body: %s", resp)
	}
	resp := r.Do("POST", "/v1/notices", "platform:examplenet", large)
	if resp.Status != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second large body: %s %v, want 429 with Retry-After", resp, resp.Header)
	}
	r.Submit("examplenet", relaytest.Notice("LARGE-SMALL", false, "AT", "", ""))
	if resp := r.Do("POST", "/v1/notices", "platform:othernet", large); resp.Status != http.StatusBadRequest {
		t.Fatalf("another platform's large body: %s", resp)
	}
}

// TestUploadsWithinTheShare: an evidence file streams in while its upload
// holds one of its platform's slots, so a platform's uploads count against
// its own concurrency share (429 beyond it), never against another's.
func TestUploadsWithinTheShare(t *testing.T) {
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Limits.PerCaller = config.PerCaller{Rate: 1000, Burst: 1000, Concurrency: 1}
	}})
	id := r.Submit("examplenet", relaytest.Notice("SHARE-UPLOAD", false, "AT", "", ""))
	path := "/v1/notices/" + id + "/attachments"
	slow := func() net.Conn {
		return slowRequest(t, r.URL, "127.0.0.1", "POST "+path, r.Tokens["platform:examplenet"], 1000)
	}
	c := slow()
	defer func() { c.Close() }()
	hdr := http.Header{"Content-Type": {"text/plain"}}
	deadline := time.Now().Add(20 * time.Second)
	stored := false // by an attempt that came before the slow upload held its slot
	for {
		resp := r.DoHeader("POST", path, "platform:examplenet", hdr, "second file")
		if resp.Status == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
			break
		}
		stored = stored || resp.Status == http.StatusCreated
		if time.Now().After(deadline) {
			t.Fatalf("upload beside a streaming one: %s, want 429 with Retry-After", resp)
		}
		// The slow upload may not hold its slot yet; or, arriving while
		// this attempt held it, it was answered 429 itself: then it
		// starts again.
		if answered(c) {
			c.Close()
			c = slow()
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Submit("othernet", relaytest.Notice("SHARE-UPLOAD-OTHER", false, "AT", "", ""))
	c.Close()
	for {
		resp := r.DoHeader("POST", path, "platform:examplenet", hdr, "second file")
		if resp.Status == http.StatusCreated || stored && resp.Status == http.StatusOK {
			break
		}
		if resp.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("upload after the streaming one ended: %s, want 201", resp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
