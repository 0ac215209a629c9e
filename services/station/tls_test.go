package station_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/services/station"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "station"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Behind TLS the station serves HTTPS only, and its cookies are Secure.
func TestStationOverTLS(t *testing.T) {
	e := newEnv(t)
	certFile, keyFile, pool := selfSigned(t)
	yaml := strings.Replace(e.cfgYAML, "http: {listen: 127.0.0.1:0}",
		"http: {listen: 127.0.0.1:0, tls: {cert_file: "+certFile+", key_file: "+keyFile+"}}", 1)
	yaml = strings.Replace(yaml, "data: ", "data: "+t.TempDir()+"/", 1)
	cfg, err := station.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := station.Start(context.Background(), station.Options{Config: cfg, Log: zaptest.NewLogger(t), Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "https://" + s.Addr()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS header over TLS")
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatal("no CSRF token")
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = c.PostForm(base+"/signin", url.Values{"csrf": {m[1]}, "user": {"duty1"}, "password": {analystPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "nr_session" {
			session = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in over TLS: HTTP %d, session cookie %+v", resp.StatusCode, session)
	}
	// Plain HTTP to the TLS listener gets net/http's 400, never a page.
	if r2, err := http.Get("http://" + s.Addr() + "/signin"); err == nil {
		r2.Body.Close()
		if r2.StatusCode == http.StatusOK {
			t.Fatal("the station answered plain HTTP while configured for TLS")
		}
	}
}

// The station's certificate is read again when its files change: a new
// connection gets the new one without a restart.
func TestStationCertificateReloaded(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "station.crt"), filepath.Join(dir, "station.key")
	first := relaytest.WriteCert(t, certFile, keyFile)
	e := newEnvWith(t, nil, func(yaml string) string {
		return strings.Replace(yaml, "http: {listen: 127.0.0.1:0}",
			"http: {listen: 127.0.0.1:0, tls: {cert_file: "+certFile+", key_file: "+keyFile+"}}", 1)
	})
	served := func() *x509.Certificate {
		conn, err := tls.Dial("tcp", e.station.Addr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test compares the certificate itself
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	if got := served(); !got.Equal(first) {
		t.Fatalf("serving %s, want %s", got.Subject, first.Subject)
	}
	second := relaytest.WriteCert(t, certFile, keyFile)
	relaytest.Eventually(t, 20*time.Second, "the renewed certificate served", func() bool { return served().Equal(second) })
	// And it is a working HTTPS station with it.
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: relaytest.CertPool(t, certFile)}}}
	resp, err := c.Get("https://" + e.station.Addr() + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page over the renewed certificate: HTTP %d", resp.StatusCode)
	}
}

// A relay behind a private CA: with relay.ca the station trusts it and
// receives; without, it refuses the relay's certificate and says the relay
// is unreachable (it never falls back to plain HTTP or to no checking).
func TestStationTrustsRelayCA(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "relay.crt"), filepath.Join(dir, "relay.key")
	relaytest.WriteCert(t, certFile, keyFile)
	relayTLS := func(c *config.Config) { c.HTTP.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile} }

	e := newEnvWith(t, relayTLS, func(yaml string) string {
		return strings.Replace(yaml, "token_env: NR_STATION_TOKEN}", "token_env: NR_STATION_TOKEN, ca: "+certFile+"}", 1)
	})
	if !strings.HasPrefix(e.relay.URL, "https://") {
		t.Fatalf("relay at %s, want https", e.relay.URL)
	}
	e.relay.Submit("examplenet", relaytest.Notice("CA-1", false, "", "DE", ""))
	relaytest.Eventually(t, 20*time.Second, "the notice received over TLS", func() bool { return e.stored(t) == 1 })

	untrusting := newEnvWith(t, relayTLS, nil)
	relaytest.Eventually(t, 20*time.Second, "the relay's certificate refused", func() bool {
		st, err := untrusting.station.Store().Relay(context.Background())
		return err == nil && !st.UnreachableSince.IsZero() && strings.Contains(st.LastError, "certificate")
	})
}
