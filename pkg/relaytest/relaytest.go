// Package relaytest starts a real relay (embedded NATS server with fsync,
// real HTTP on port 0) for tests, and speaks its HTTP API the way a
// platform and an authority would.
package relaytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relay"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Relay is a relay under test.
type Relay struct {
	T testing.TB
	*relay.Relay
	Config  *config.Config
	DataDir string
	URL     string
	// Tokens maps "platform:<id>" and "authority:<id>" to plain tokens.
	Tokens map[string]string
	client *http.Client
	opts   Options
}

// Options tune the relay under test.
type Options struct {
	// DataDir reuses a data dir (to test restarts); empty makes a new one.
	DataDir string
	// Config changes the test configuration before start.
	Config func(*config.Config)
	// Services to run; empty runs all.
	Services []string
	// NATSURL, when set, connects the relay to that NATS server (as
	// `serve` does) instead of embedding one, so a test can stop and
	// restart the server under it.
	NATSURL string
	// Log, when set, receives the relay's logs besides the test's log.
	Log zapcore.Core
	// Now, when set, is the relay's clock.
	Now func() time.Time
}

// Platforms and authorities of the test configuration.
var (
	Platforms   = []string{"examplenet", "othernet"}
	Authorities = map[string]string{"AT": "at-police", "DE": "de-bka", "FR": "fr-police", "RO": "ro-police",
		"IE": "ie-garda", "NL": "nl-police", "EU": "europol"}
)

// Start starts a relay with the test configuration and stops it when the
// test ends.
func Start(t testing.TB, o Options) *Relay {
	t.Helper()
	r := &Relay{T: t, DataDir: o.DataDir, Tokens: map[string]string{}, client: &http.Client{Timeout: 30 * time.Second}, opts: o}
	if r.DataDir == "" {
		r.DataDir = t.TempDir()
	}
	// Rejections are counted over a short window, so that tests see their
	// event soon.
	c := &config.Config{MemberStates: "EU27", Audit: config.Audit{RejectionWindow: config.Duration(100 * time.Millisecond)}}
	for _, p := range Platforms {
		tok := "platform-token-" + p
		r.Tokens["platform:"+p] = tok
		c.Platforms = append(c.Platforms, config.Platform{ID: p, Name: p, Tokens: []config.Token{config.Digest(tok)},
			Establishment: "IE", Fallback: []string{"establishment"}})
	}
	for cc, id := range Authorities {
		tok := "authority-token-" + id
		r.Tokens["authority:"+id] = tok
		c.Authorities = append(c.Authorities, config.Authority{ID: id, Country: cc, Name: id, Tokens: []config.Token{config.Digest(tok)}})
	}
	if o.NATSURL != "" {
		c.NATS.URL = o.NATSURL
	}
	if o.Config != nil {
		o.Config(c)
	}
	cfg, err := config.Normalize(c)
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	r.Config = cfg
	if cfg.HTTP.TLS.Enabled() {
		// The test's client trusts the relay's (self-signed) certificate.
		r.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: CertPool(t, cfg.HTTP.TLS.CertFile)}}
	}
	r.start(o.Services)
	return r
}

func (r *Relay) start(services []string) {
	r.T.Helper()
	// A restart keeps the port when it can, so that clients configured
	// with the URL (a station) find the relay again.
	addr := "127.0.0.1:0"
	if r.URL != "" {
		addr = strings.TrimPrefix(r.URL, "http://")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		r.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := zaptest.NewLogger(r.T)
	if r.opts.Log != nil {
		log = log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, r.opts.Log) }))
	}
	rel, err := relay.Start(ctx, relay.Options{Config: r.Config, Embedded: r.opts.NATSURL == "", DataDir: r.DataDir,
		Services: services, Log: log, Listener: ln, Now: r.opts.Now})
	if err != nil {
		r.T.Fatalf("starting relay: %v", err)
	}
	r.Relay = rel
	r.URL = rel.URL()
	r.T.Cleanup(func() { r.Stop() })
}

// Stop stops the relay gracefully (idempotent).
func (r *Relay) Stop() {
	if r.Relay != nil {
		if err := r.Relay.Close(); err != nil {
			r.T.Errorf("closing relay: %v", err)
		}
		r.Relay = nil
	}
}

// Restart stops the relay and starts it again on the same data dir.
func (r *Relay) Restart() {
	r.T.Helper()
	r.Stop()
	r.start(nil)
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (resp *Response) JSON(v any) error { return json.Unmarshal(resp.Body, v) }

// Map decodes the body as an object.
func (resp *Response) Map() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(resp.Body, &m)
	return m
}

func (resp *Response) String() string { return fmt.Sprintf("%d %s", resp.Status, resp.Body) }

// Do sends a request with the token of who ("platform:<id>",
// "authority:<id>", or "" for none).
func (r *Relay) Do(method, path, who string, body any) *Response {
	r.T.Helper()
	return r.DoHeader(method, path, who, nil, body)
}

// DoHeader is Do with extra request headers.
func (r *Relay) DoHeader(method, path, who string, header http.Header, body any) *Response {
	r.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			r.T.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, r.URL+path, rd)
	if err != nil {
		r.T.Fatal(err)
	}
	if who != "" {
		tok, ok := r.Tokens[who]
		if !ok {
			tok = who // a raw token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		r.T.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// Notice is a valid notice body with the given reference and countries.
func Notice(ref string, imminent bool, offence, suspect, victim string) map[string]any {
	n := map[string]any{
		"reference":       ref,
		"category":        "human_trafficking",
		"exploitation":    "sexual",
		"imminent_threat": imminent,
		"suspicion":       "Account recruits for fake jobs abroad; see chat.",
		"occurred_at":     "2026-11-20T14:03:00+01:00",
	}
	if offence != "" {
		n["locations"] = []map[string]any{{"country": offence, "description": "meeting point"}}
	}
	if suspect != "" {
		n["suspects"] = []map[string]any{{"country": suspect, "account_id": "u-991"}}
	}
	if victim != "" {
		n["victims"] = []map[string]any{{"country": victim, "minor": true}}
	}
	return n
}

// Submit posts a notice as platform and returns its id, failing the test
// unless the answer is 202.
func (r *Relay) Submit(platform string, n map[string]any) string {
	r.T.Helper()
	resp := r.Do("POST", "/v1/notices", "platform:"+platform, n)
	if resp.Status != http.StatusAccepted {
		r.T.Fatalf("submit: want 202, got %s", resp)
	}
	return resp.Map()["id"].(string)
}

// Delivery is a delivery as the inbox hands it out.
type Delivery struct {
	ID       string         `json:"id"`
	NoticeID string         `json:"notice_id"`
	Type     string         `json:"type"`
	Priority string         `json:"priority"`
	Notice   map[string]any `json:"notice"`
	// Message is the message of a delivery of type message, in clear.
	Message map[string]any `json:"message"`
	// Attachment describes the file of a delivery of type attachment, in
	// clear.
	Attachment map[string]any `json:"attachment"`
	Ciphertext string         `json:"ciphertext"`
}

// Inbox leases up to max deliveries of authority.
func (r *Relay) Inbox(authority string, limit int) []Delivery {
	r.T.Helper()
	resp := r.Do("GET", fmt.Sprintf("/v1/inbox?max=%d", limit), "authority:"+authority, nil)
	if resp.Status != http.StatusOK {
		r.T.Fatalf("inbox of %s: %s", authority, resp)
	}
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
	}
	if err := resp.JSON(&out); err != nil {
		r.T.Fatal(err)
	}
	return out.Deliveries
}

// Ack acknowledges a delivery and returns the status code.
func (r *Relay) Ack(authority, id string) int {
	r.T.Helper()
	return r.Do("POST", "/v1/inbox/"+id+"/ack", "authority:"+authority, nil).Status
}

// Status returns the platform's view of a notice.
func (r *Relay) Status(platform, id string) map[string]any {
	r.T.Helper()
	resp := r.Do("GET", "/v1/notices/"+id, "platform:"+platform, nil)
	if resp.Status != http.StatusOK {
		r.T.Fatalf("status of %s: %s", id, resp)
	}
	return resp.Map()
}

// Queued reports whether the platform's notice has every recipient's
// delivery in its queue: decided, and a queued event (which routing stores
// only after the delivery) for each recipient. The status "routed" alone
// comes with the decision, before any delivery is stored.
func (r *Relay) Queued(platform, id string) bool {
	r.T.Helper()
	rs, _ := r.Status(platform, id)["recipients"].([]any)
	for _, rc := range rs {
		if m, _ := rc.(map[string]any); m["queued_at"] == nil {
			return false
		}
	}
	return len(rs) > 0
}

// QueuedUntil waits up to d until every notice of the platform is Queued.
func (r *Relay) QueuedUntil(platform string, d time.Duration, ids ...string) {
	r.T.Helper()
	Eventually(r.T, d, fmt.Sprintf("%d notices of %s in their recipients' queues", len(ids), platform), func() bool {
		for _, id := range ids {
			if !r.Queued(platform, id) {
				return false
			}
		}
		return true
	})
}

// Events returns how many subjects of the event stream match filter (each
// event has a subject of its own), e.g. "nr.event.*.queued.*.withdrawal";
// -1 when the stream cannot be read now.
func (r *Relay) Events(filter string) int {
	r.T.Helper()
	js, err := jetstream.New(r.Conn())
	if err != nil {
		r.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.Events)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return -1
	}
	return len(info.State.Subjects)
}

// Buffer is a bytes.Buffer safe for a writer and a reader in different
// goroutines: a command's output, or a relay's log.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Eventually polls cond until it returns true or the deadline passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(wait)
	}
}

// InboxUntil polls authority's inbox until it has handed out n deliveries
// in total, and returns them.
func (r *Relay) InboxUntil(authority string, n int, d time.Duration) []Delivery {
	r.T.Helper()
	var got []Delivery
	Eventually(r.T, d, fmt.Sprintf("%d deliveries for %s", n, authority), func() bool {
		got = append(got, r.Inbox(authority, 100)...)
		return len(got) >= n
	})
	return got
}

// DeliveryUntil reads authority's inbox for up to d until it hands out a
// delivery of type typ for notice id, and returns it. Deliveries of other
// notices read on the way stay leased: a test that waits for one
// particular delivery does not take whichever came first for it.
func (r *Relay) DeliveryUntil(authority, typ, id string, d time.Duration) Delivery {
	r.T.Helper()
	var found Delivery
	Eventually(r.T, d, fmt.Sprintf("a %s delivery of %s for %s", typ, id, authority), func() bool {
		for _, dl := range r.Inbox(authority, 100) {
			if dl.NoticeID == id && dl.Type == typ {
				found = dl
				return true
			}
		}
		return false
	})
	return found
}

var (
	dataElement   = regexp.MustCompile(`<[a-z]+((?:\s+[a-z0-9-]+="[^"]*")+)\s*/?>`)
	dataAttribute = regexp.MustCompile(`\s+data-([a-z0-9-]+)="([^"]*)"`)
)

// DataRows returns the data-* attributes (without "data-", values
// unescaped) of every element of page that has a data-<key> attribute, in
// document order: how tests read the numbers a page shows.
func DataRows(page []byte, key string) []map[string]string {
	var out []map[string]string
	for _, m := range dataElement.FindAllSubmatch(page, -1) {
		attrs := map[string]string{}
		for _, a := range dataAttribute.FindAllSubmatch(m[1], -1) {
			attrs[string(a[1])] = html.UnescapeString(string(a[2]))
		}
		if _, ok := attrs[key]; ok {
			out = append(out, attrs)
		}
	}
	return out
}

// DataMap maps the data-<key> of every element of DataRows(page, key) to
// its data-<value>: how tests read a table of counts.
func DataMap(page []byte, key, value string) map[string]string {
	out := map[string]string{}
	for _, r := range DataRows(page, key) {
		out[r[key]] = r[value]
	}
	return out
}
