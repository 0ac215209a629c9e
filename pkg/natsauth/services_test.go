package natsauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/natsauth"
	"github.com/noticerelay/noticerelay/pkg/relay"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/stream"
	"github.com/noticerelay/noticerelay/pkg/webhook"
)

// Tokens and settings of the configuration every service process shares.
const (
	svcPlatform       = "examplenet"
	svcPlatformToken  = "platform-token-examplenet"
	svcAuditor        = "test-auditor"
	svcAuditorToken   = "auditor-token-test-auditor"
	svcWebhookEnv     = "NR_TEST_WEBHOOK_SECRET_NL"
	svcWebhookSecret  = "webhook-secret-0123456789"
	svcUrgentDeadline = 1500 * time.Millisecond
)

func svcAuthorityToken(id string) string { return "authority-token-" + id }

// serviceProc is one relay process running one service as its own user.
type serviceProc struct {
	name, user string
	relay      *relay.Relay
	url        string
	errs       violations // asynchronous errors of its NATS connection
}

// serverLog attributes the violations the nats-server logs to the users
// of the connections the test knows (by client id).
type serverLog struct {
	path string
	mu   sync.Mutex
	cids map[uint64]string
}

func (l *serverLog) add(nc *nats.Conn, user string) {
	cid, err := nc.GetClientID()
	if err != nil {
		return
	}
	l.mu.Lock()
	l.cids[cid] = user
	l.mu.Unlock()
}

// attribute names user for every connection not known yet that the log
// mentions from offset on (a process that failed to start).
func (l *serverLog) attribute(offset int64, user string) {
	data, err := os.ReadFile(l.path)
	if err != nil || int64(len(data)) < offset {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range cidPattern.FindAllStringSubmatch(string(data[offset:]), -1) {
		if cid, err := strconv.ParseUint(m[1], 10, 64); err == nil && l.cids[cid] == "" {
			l.cids[cid] = user
		}
	}
}

var cidPattern = regexp.MustCompile(`cid:(\d+) `)

// size is the log's current length, to read only what follows.
func (l *serverLog) size() int64 {
	fi, err := os.Stat(l.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

var violationLine = regexp.MustCompile(`cid:(\d+) .*((?:Publish|Subscription)[A-Za-z ]* Violation.*)$`)

// violations lists the violations logged from offset on, each named by
// its user (or by unknown when it is none of the test's connections).
func (l *serverLog) violations(offset int64, unknown string) []string {
	data, err := os.ReadFile(l.path)
	if err != nil || int64(len(data)) < offset {
		return []string{fmt.Sprintf("reading %s: %v", l.path, err)}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(string(data[offset:]), "\n") {
		if !strings.Contains(line, "Violation") {
			continue
		}
		who := unknown
		text := line
		if m := violationLine.FindStringSubmatch(line); m != nil {
			text = m[2]
			if cid, err := strconv.ParseUint(m[1], 10, 64); err == nil && l.cids[cid] != "" {
				who = l.cids[cid]
			}
		}
		out = append(out, who+": "+text)
	}
	return out
}

// Every relay service runs as its own user of the shipped configuration,
// one process each, and together they carry notices end to end: intake
// stores, routing decides and queues, the inbox hands out and takes an
// HTTP acknowledgement, an authority in NATS mode consumes and acks its own
// queue on NATS and receipts records that ack, escalation escalates an
// urgent notice left unacknowledged to a webhook authority that push
// delivers to, status reports all of it, and audit signs checkpoints and
// proves the events. No connection may meet a permissions violation.
func TestEachServiceRunsAsItsOwnUser(t *testing.T) {
	natsURL, pw, logPath := startShippedWithLog(t)
	srvLog := &serverLog{path: logPath, cids: map[uint64]string{}}
	// Registered first, so it runs last: after every relay has closed.
	t.Cleanup(func() {
		if vs := srvLog.violations(0, "unidentified connection"); len(vs) > 0 {
			t.Errorf("nats-server logged %d permissions violations:\n  %s", len(vs), strings.Join(vs, "\n  "))
		}
	})

	// The webhook authority's receiver.
	type pushed struct {
		body      []byte
		signature error // of webhook.Verify
	}
	var hookMu sync.Mutex
	var hooks []pushed
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, err := webhook.Verify([]byte(svcWebhookSecret), r.Header, body, time.Now(), webhook.DefaultReplayWindow)
		hookMu.Lock()
		hooks = append(hooks, pushed{body, err})
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	t.Setenv(svcWebhookEnv, svcWebhookSecret)

	// Audit keys and pseudonym key, shared by every process.
	keys := t.TempDir()
	skey, vkey, err := auditlog.GenerateKeys(keys, "noticerelay.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	pkey := filepath.Join(keys, auditlog.PseudonymKeyFile)
	if err := relay.WritePseudonymKey(pkey); err != nil {
		t.Fatal(err)
	}
	verifier, err := auditlog.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}

	authority := func(id, cc string) config.Authority {
		return config.Authority{ID: id, Country: cc, Name: id, Tokens: []config.Token{config.Digest(svcAuthorityToken(id))}}
	}
	de := authority("de-police", "DE") // pulls from the HTTP inbox
	fr := authority("fr-police", "FR") // consumes from NATS
	fr.Delivery.Mode = config.ModeNATS
	at := authority("at-police", "AT") // never acknowledges: escalated to NL
	at.Escalation = "nl-police"
	nl := authority("nl-police", "NL") // pushed to by webhook
	nl.Delivery = config.Delivery{Mode: config.ModeWebhook, URL: hook.URL, SecretEnv: svcWebhookEnv}
	cfg, err := config.Normalize(&config.Config{
		MemberStates: "EU27",
		Platforms: []config.Platform{{ID: svcPlatform, Name: svcPlatform, Tokens: []config.Token{config.Digest(svcPlatformToken)},
			Establishment: "DE", Fallback: []string{"establishment"}}},
		Authorities: []config.Authority{de, fr, at, nl},
		Auditors:    []config.Auditor{{ID: svcAuditor, Tokens: []config.Token{config.Digest(svcAuditorToken)}}},
		Audit:       config.Audit{SigningKey: skey, VerifierKey: vkey, PseudonymKey: pkey},
		Deliveries:  config.Deliveries{UrgentDeadline: config.Duration(svcUrgentDeadline)},
	})
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	for _, a := range cfg.Authorities {
		if _, ok := pw[a.ID]; !ok {
			t.Fatalf("authority %s has no user in %s", a.ID, shipped)
		}
	}

	// One process per service, each connected as relay-<service>.
	procs := map[string]*serviceProc{}
	for _, name := range relay.ServiceNames() {
		procs[name] = startServiceProc(t, cfg, natsURL, pw, name, srvLog)
	}
	for _, p := range procs {
		if st, body := svcDo(t, "GET", p.url+"/readyz", "", nil); st != http.StatusOK {
			t.Fatalf("%s: /readyz %d %s", p.name, st, body)
		}
	}

	// The platform submits a notice concerning DE (offence) and FR (suspect).
	intake := procs["intake"].url
	n1 := svcSubmit(t, intake, relaytest.Notice("PERM-1", false, "DE", "FR", ""))
	// Intake also answers a repeat from what it stored, and records a
	// rejection as an event.
	if st, body := svcDo(t, "POST", intake+"/v1/notices", svcPlatformToken, relaytest.Notice("PERM-1", false, "DE", "FR", "")); st != http.StatusOK || !strings.Contains(string(body), n1) {
		t.Fatalf("repeated submission: %d %s", st, body)
	}
	if st, body := svcDo(t, "POST", intake+"/v1/notices", svcPlatformToken, map[string]any{"reference": "PERM-BAD"}); st != http.StatusBadRequest {
		t.Fatalf("invalid submission: %d %s", st, body)
	}

	// DE takes it from the HTTP inbox and acknowledges it there.
	inbox := procs["inbox"].url
	var deGot relaytest.Delivery
	waitFor(t, "DE's delivery from the inbox", func() bool {
		for _, d := range svcInbox(t, inbox, "de-police") {
			if d.NoticeID == n1 && d.Type == "notice" {
				deGot = d
			}
		}
		return deGot.ID != ""
	})
	if st, body := svcDo(t, "POST", inbox+"/v1/inbox/"+deGot.ID+"/ack", svcAuthorityToken("de-police"), nil); st != http.StatusNoContent {
		t.Fatalf("DE ack: %d %s", st, body)
	}

	// FR consumes its own queue on NATS, as its own user, and acks there.
	var frErrs violations
	frNC, err := nats.Connect(natsURL, nats.UserInfo("fr-police", pw["fr-police"]),
		nats.CustomInboxPrefix(natsauth.InboxPrefix("fr-police")), nats.ErrorHandler(frErrs.handler))
	if err != nil {
		t.Fatalf("connect fr-police: %v", err)
	}
	t.Cleanup(func() {
		frNC.Close()
		noViolations(t, "fr-police", &frErrs)
	})
	srvLog.add(frNC, "fr-police")
	frJS, err := jetstream.New(frNC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	frCons, err := frJS.Consumer(ctx, stream.Deliveries, delivery.ConsumerName("fr-police", "normal"))
	if err != nil {
		t.Fatalf("fr-police: its consumer: %v", err)
	}
	var frGot *delivery.Delivery
	waitFor(t, "FR's delivery on NATS", func() bool {
		batch, err := frCons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatalf("fr-police fetch: %v", err)
		}
		for m := range batch.Messages() {
			d, err := delivery.Decode(m.Data())
			if err != nil {
				t.Fatalf("fr-police: %v", err)
			}
			if d.NoticeID != n1 || d.Type != "notice" {
				t.Fatalf("fr-police got %+v, want notice %s", d, n1)
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("fr-police ack: %v", err)
			}
			frGot = d
		}
		return frGot != nil
	})

	// DE writes to the platform about the notice; the platform reads it
	// and answers FR, who gets the answer on NATS and acks it there.
	msgs := procs["messages"].url
	if st, body := svcDo(t, "POST", msgs+"/v1/inbox/"+deGot.ID+"/messages", svcAuthorityToken("de-police"),
		map[string]string{"kind": "preservation_request", "text": "Please preserve the account."}); st != http.StatusCreated {
		t.Fatalf("DE's message: %d %s", st, body)
	}
	if st, body := svcDo(t, "GET", msgs+"/v1/notices/"+n1+"/messages", svcPlatformToken, nil); st != http.StatusOK ||
		!strings.Contains(string(body), "Please preserve") {
		t.Fatalf("the platform's list: %d %s", st, body)
	}
	if st, body := svcDo(t, "POST", msgs+"/v1/notices/"+n1+"/messages", svcPlatformToken,
		map[string]string{"to": "fr-police", "text": "We preserved it."}); st != http.StatusCreated {
		t.Fatalf("the platform's message: %d %s", st, body)
	}
	var frMsg *delivery.Delivery
	waitFor(t, "FR's message on NATS", func() bool {
		batch, err := frCons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatalf("fr-police fetch: %v", err)
		}
		for m := range batch.Messages() {
			d, err := delivery.Decode(m.Data())
			if err != nil || d.Type != "message" || !strings.Contains(string(d.MessageBody), "We preserved it.") {
				t.Fatalf("fr-police got %+v (%v), want the platform's message", d, err)
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("fr-police ack: %v", err)
			}
			frMsg = d
		}
		return frMsg != nil
	})

	// Status reports both receipts: DE's through the inbox, FR's through
	// receipts.
	status := procs["status"].url
	var st1 map[string]any
	// Two processes fold the status (status's own and the portal's, which
	// runs status too), each a batch at a time: the delivered events may
	// be folded after the acknowledgements.
	waitFor(t, "notice acknowledged by DE and FR in the status", func() bool {
		st1 = svcStatus(t, status, n1)
		rs, _ := st1["recipients"].([]any)
		for _, x := range rs {
			if rc, _ := x.(map[string]any); rc["delivered_at"] == nil {
				return false
			}
		}
		return st1["status"] == "acknowledged"
	})
	var recipients []string
	for _, x := range st1["recipients"].([]any) {
		rc := x.(map[string]any)
		recipients = append(recipients, rc["authority"].(string))
		if rc["status"] != "acknowledged" || rc["delivered_at"] == nil || rc["acknowledged_at"] == nil {
			t.Errorf("recipient %v", rc)
		}
	}
	slices.Sort(recipients)
	if !slices.Equal(recipients, []string{"de-police", "fr-police"}) {
		t.Fatalf("recipients %v, want de-police and fr-police", recipients)
	}

	// An urgent notice for AT, never acknowledged: escalation escalates it
	// to NL, whose copy push delivers to its webhook.
	n2 := svcSubmit(t, intake, relaytest.Notice("PERM-URGENT", true, "AT", "", ""))
	var esc relaytest.Delivery
	waitFor(t, "the escalation copy at NL's webhook", func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		for _, h := range hooks {
			var d relaytest.Delivery
			if json.Unmarshal(h.body, &d) == nil && d.NoticeID == n2 {
				if h.signature != nil {
					t.Fatalf("NL's webhook: %v", h.signature)
				}
				esc = d
			}
		}
		return esc.ID != ""
	})
	if esc.Type != "escalation" || esc.Priority != "urgent" {
		t.Errorf("NL's webhook got %+v, want an urgent escalation", esc)
	}
	waitFor(t, "AT's escalation in the status", func() bool {
		rs, _ := svcStatus(t, status, n2)["recipients"].([]any)
		return len(rs) == 1 && rs[0].(map[string]any)["escalated_at"] != nil
	})

	// A notice for DE withdrawn at once: routing queues the withdrawal,
	// the inbox hands out both, status reports it withdrawn.
	n3 := svcSubmit(t, intake, relaytest.Notice("PERM-WITHDRAWN", false, "DE", "", ""))
	if st, body := svcDo(t, "POST", intake+"/v1/notices/"+n3+"/withdraw", svcPlatformToken,
		map[string]string{"reason": "sent in error"}); st != http.StatusAccepted {
		t.Fatalf("withdraw: %d %s", st, body)
	}
	kinds := map[string]bool{}
	waitFor(t, "DE's notice and withdrawal deliveries of the withdrawn notice", func() bool {
		for _, d := range svcInbox(t, inbox, "de-police") {
			if d.NoticeID == n3 {
				kinds[d.Type] = true
			}
			if st, body := svcDo(t, "POST", inbox+"/v1/inbox/"+d.ID+"/ack", svcAuthorityToken("de-police"), nil); st != http.StatusNoContent {
				t.Fatalf("DE ack %s: %d %s", d.ID, st, body)
			}
		}
		return kinds["notice"] && kinds["withdrawal"]
	})
	waitFor(t, "withdrawn in the status", func() bool { return svcStatus(t, status, n3)["status"] == "withdrawn" })

	// Audit: the proofs of each notice hold the events of every service
	// that handled it (the push receipt of NL's copy among them)...
	actors := func(id string) map[string]bool {
		st, body := svcDo(t, "GET", procs["audit"].url+"/v1/audit/proof?notice="+id, svcAuditorToken, nil)
		if st != http.StatusOK {
			return nil
		}
		var ans struct {
			Proofs []struct {
				Leaf json.RawMessage `json:"leaf"`
			} `json:"proofs"`
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatalf("proof: %v: %s", err, body)
		}
		out := map[string]bool{}
		for _, p := range ans.Proofs {
			var e struct{ Type, Actor, Recipient string }
			if err := json.Unmarshal(p.Leaf, &e); err != nil {
				t.Fatalf("leaf: %v", err)
			}
			out[e.Actor+":"+e.Type+":"+e.Recipient] = true
		}
		return out
	}
	for id, want := range map[string][]string{
		n1: {"intake:accepted:", "routing:decided:", "routing:queued:de-police", "routing:queued:fr-police",
			"inbox:delivered:de-police", "inbox:acknowledged:de-police",
			"receipts:delivered:fr-police", "receipts:acknowledged:fr-police",
			"messages:message_sent:platform", "messages:message_delivered:platform", "messages:message_sent:fr-police",
			"receipts:message_delivered:fr-police"},
		n2: {"escalation:escalated:at-police", "escalation:queued:nl-police",
			"push:delivered:nl-police", "push:acknowledged:nl-police"},
		n3: {"intake:withdrawn:", "routing:queued:de-police"},
	} {
		var got map[string]bool
		waitFor(t, "audit proofs of "+id, func() bool {
			got = actors(id)
			for _, w := range want {
				if !got[w] {
					return false
				}
			}
			return true
		})
	}

	// ...and the latest signed checkpoint covers every event stored.
	auditJS, err := jetstream.New(procs["audit"].relay.Conn())
	if err != nil {
		t.Fatal(err)
	}
	events, err := auditJS.Stream(ctx, stream.Events)
	if err != nil {
		t.Fatal(err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("a signed checkpoint of at least %d events", info.State.LastSeq), func() bool {
		st, body := svcDo(t, "GET", procs["audit"].url+"/v1/audit/checkpoint", "", nil)
		if st != http.StatusOK {
			return false
		}
		cp, err := auditlog.Open(body, verifier)
		if err != nil {
			t.Fatalf("checkpoint: %v\n%s", err, body)
		}
		return cp.Size >= info.State.LastSeq
	})

	// Every process is still ready (and none met a permissions violation:
	// checked when each closes).
	for _, name := range relay.ServiceNames() {
		p := procs[name]
		if st, body := svcDo(t, "GET", p.url+"/readyz", "", nil); st != http.StatusOK {
			t.Errorf("%s: /readyz %d %s", p.name, st, body)
		}
	}
}

// noViolations fails the test if the connection of user met a permissions
// violation.
func noViolations(t *testing.T, user string, v *violations) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var got []string
	for _, e := range v.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") {
			got = append(got, e)
		}
	}
	if len(got) > 0 {
		t.Errorf("%s met %d permissions violations:\n  %s", user, len(got), strings.Join(got, "\n  "))
	}
}

// startServiceProc starts a relay running only service name, connected as
// relay-<name>, on its own HTTP listener, and closes it when the test ends.
func startServiceProc(t *testing.T, cfg *config.Config, natsURL string, pw map[string]string, name string, srvLog *serverLog) *serviceProc {
	t.Helper()
	user := "relay-" + name
	if _, ok := pw[user]; !ok {
		t.Fatalf("%s has no user %s", shipped, user)
	}
	c := *cfg
	c.NATS.URL = strings.Replace(natsURL, "nats://", "nats://"+user+":"+pw[user]+"@", 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offset := srvLog.size()
	r, err := relay.Start(ctx, relay.Options{Config: &c, Services: []string{name}, Listener: ln,
		Log: zaptest.NewLogger(t).Named(name)})
	if err != nil {
		ln.Close()
		// Started one at a time: what the log says meanwhile is this one's.
		srvLog.attribute(offset, user)
		vs := srvLog.violations(offset, "unidentified connection")
		t.Fatalf("starting %s as %s: %v\nnats-server violations meanwhile:\n  %s", name, user, err, strings.Join(vs, "\n  "))
	}
	p := &serviceProc{name: name, user: user, relay: r, url: "http://" + r.Addr()}
	r.Conn().SetErrorHandler(p.errs.handler)
	srvLog.add(r.Conn(), user)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("closing %s: %v", name, err)
		}
		noViolations(t, user, &p.errs)
	})
	return p
}

var svcClient = &http.Client{Timeout: 15 * time.Second}

// svcDo sends a request with a bearer token (none when empty) and returns
// the status and body.
func svcDo(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := svcClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func svcSubmit(t *testing.T, intake string, n map[string]any) string {
	t.Helper()
	st, body := svcDo(t, "POST", intake+"/v1/notices", svcPlatformToken, n)
	if st != http.StatusAccepted {
		t.Fatalf("submit: %d %s", st, body)
	}
	var ans struct{ ID string }
	if err := json.Unmarshal(body, &ans); err != nil || ans.ID == "" {
		t.Fatalf("submit: %v: %s", err, body)
	}
	return ans.ID
}

func svcInbox(t *testing.T, inbox, authority string) []relaytest.Delivery {
	t.Helper()
	st, body := svcDo(t, "GET", inbox+"/v1/inbox?max=100", svcAuthorityToken(authority), nil)
	if st != http.StatusOK {
		t.Fatalf("inbox of %s: %d %s", authority, st, body)
	}
	var ans struct{ Deliveries []relaytest.Delivery }
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	return ans.Deliveries
}

func svcStatus(t *testing.T, status, id string) map[string]any {
	t.Helper()
	st, body := svcDo(t, "GET", status+"/v1/notices/"+id, svcPlatformToken, nil)
	if st != http.StatusOK {
		t.Fatalf("status of %s: %d %s", id, st, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
