package relay_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// startTLS starts a relay whose listener serves HTTPS with a new
// self-signed certificate, and returns it with the certificate's files.
func startTLS(t *testing.T) (r *relaytest.Relay, certFile, keyFile string, cert *x509.Certificate) {
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "relay.crt"), filepath.Join(dir, "relay.key")
	cert = relaytest.WriteCert(t, certFile, keyFile)
	r = relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.HTTP.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
	}})
	return r, certFile, keyFile, cert
}

// With http.tls the listener speaks only HTTPS, with the configured
// certificate; after the files are rotated, a new connection gets the new
// certificate without a restart (finding 15 of issue 10).
func TestTLSListenerAndRotation(t *testing.T) {
	r, certFile, keyFile, first := startTLS(t)
	if !strings.HasPrefix(r.URL, "https://") {
		t.Fatalf("relay URL %s, want https://", r.URL)
	}
	// The API works over TLS, verified against the certificate.
	id := r.Submit("examplenet", relaytest.Notice("TLS-1", true, "", "DE", ""))
	if st := r.Status("examplenet", id); st["id"] != id {
		t.Fatalf("status over TLS: %v", st)
	}
	// Plain HTTP is not served.
	resp, err := http.Get("http://" + r.Addr() + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP answered 200: %s", body)
		}
	}

	served := func() string {
		conn, err := tls.Dial("tcp", r.Addr(), &tls.Config{InsecureSkipVerify: true}) // the serial is what is checked
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := served(); got != first.SerialNumber.String() {
		t.Fatalf("served certificate %s, want %s", got, first.SerialNumber)
	}
	second := relaytest.WriteCert(t, certFile, keyFile)
	relaytest.Eventually(t, 5*time.Second, "the rotated certificate on a new connection", func() bool {
		return served() == second.SerialNumber.String()
	})
	// A client that trusts only the new certificate gets through.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: relaytest.CertPool(t, certFile)}}}
	resp, err = client.Get(r.URL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz with the new certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d", resp.StatusCode)
	}
	// Behind TLS the pages' cookies are Secure.
	for _, page := range []string{"/ui/audit/signin", "/portal/signin"} {
		resp, err = client.Get(r.URL + page)
		if err != nil {
			t.Fatalf("GET %s: %v", page, err)
		}
		resp.Body.Close()
		var csrf *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "nr_csrf" {
				csrf = c
			}
		}
		if resp.StatusCode != http.StatusOK || csrf == nil || !csrf.Secure || !csrf.HttpOnly {
			t.Errorf("GET %s over TLS: %d, CSRF cookie %+v", page, resp.StatusCode, csrf)
		}
	}
}

// `inbox pull` over real TLS: with --ca naming the relay's self-signed
// certificate it writes and acknowledges the delivery; without it the
// handshake fails, before any token is sent, and nothing is taken.
func TestInboxPullOverTLS(t *testing.T) {
	r, certFile, _, _ := startTLS(t)
	noticeID := r.Submit("examplenet", relaytest.Notice("TLS-PULL-1", true, "", "DE", ""))
	token := r.Tokens["authority:de-bka"]

	out := t.TempDir()
	code, _, errs := runCLI(t, "inbox", "pull", "--url", r.URL, "--token", token, "--out", out, "--once")
	if code != 1 || !strings.Contains(errs, "certificate") {
		t.Fatalf("pull without --ca: exit %d, stderr %s; want 1 and a certificate error", code, errs)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("pull without --ca wrote %d files", len(entries))
	}

	var pulled string
	relaytest.Eventually(t, wait, "the pull client to write the delivery", func() bool {
		code, stdout, errs := runCLI(t, "inbox", "pull", "--url", r.URL, "--ca", certFile, "--token", token, "--out", out, "--once")
		if code != 0 {
			t.Fatalf("pull with --ca: exit %d: %s", code, errs)
		}
		pulled += stdout
		return pulled != ""
	})
	deliveryID := strings.Fields(pulled)[0]
	var written cli.Pulled
	data, err := os.ReadFile(filepath.Join(out, deliveryID+".json"))
	if err != nil || json.Unmarshal(data, &written) != nil || written.NoticeID != noticeID || written.Priority != "urgent" {
		t.Fatalf("written delivery: %v %s", err, data)
	}
	relaytest.Eventually(t, wait, "status acknowledged", func() bool {
		return r.Status("examplenet", noticeID)["status"] == "acknowledged"
	})
}

// `bench --url` over real TLS with --ca: every notice accepted and
// delivered through the HTTPS API.
func TestBenchOverTLS(t *testing.T) {
	r, certFile, _, _ := startTLS(t)
	var tokens []string
	for _, cc := range []string{"AT", "DE", "FR"} {
		tokens = append(tokens, cc+"="+r.Tokens["authority:"+relaytest.Authorities[cc]])
	}
	code, stdout, errs := runCLI(t, "bench", "--url", r.URL, "--ca", certFile, "--platform-token", r.Tokens["platform:examplenet"],
		"--authority-tokens", strings.Join(tokens, ","), "--notices", "40", "--clients", "4", "--drain-timeout", "20s")
	var res cli.BenchResult
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Notices != 40 || res.Deliveries == 0 || res.Lost != 0 {
		t.Fatalf("bench over TLS: exit %d, %s\n%s", code, stdout, errs)
	}
}
