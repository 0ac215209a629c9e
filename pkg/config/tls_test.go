package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// The one rule for URLs that notices or tokens are sent to (contract
// section 10): https, or http to a loopback address.
func TestSecureURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://relay.example.eu", true},
		{"https://relay.example.eu:8443/base/", true},
		{"HTTPS://Relay.Example.EU", true},
		{"https://10.0.0.7:8080", true},
		{"https://127.0.0.1:8080", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.8.9.10/hook", true},
		{"http://[::1]:8080", true},
		{"http://[::ffff:127.0.0.1]:8080", true},
		{"http://localhost:8080", true},
		{"http://LocalHost", true},
		{"http://user:pw@127.0.0.1:8080", true},

		{"http://relay.example.eu", false},
		{"http://10.0.0.7:8080", false},
		{"http://192.168.1.1", false},
		{"http://0.0.0.0:8080", false},
		{"http://[::]:8080", false},
		{"http://[::2]:8080", false},
		{"http://128.0.0.1", false},
		{"http://localhost.example.com", false},
		{"http://127.0.0.1.example.com", false},
		{"http://127.0.0.1:8080@relay.example.eu", false},
		{"http://2130706433", false}, // 127.0.0.1 as one number: not read as an address
		{"ftp://127.0.0.1", false},
		{"ws://127.0.0.1", false},
		{"relay.example.eu", false},
		{"127.0.0.1:8080", false},
		{"/v1/inbox", false},
		{"https://", false},
		{"https:relay.example.eu", false},
		{"", false},
	}
	for _, tt := range tests {
		u, err := config.SecureURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("SecureURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
		if err == nil && u.Host == "" {
			t.Errorf("SecureURL(%q) returned no host", tt.url)
		}
		if err != nil && !strings.Contains(err.Error(), "https://") {
			t.Errorf("SecureURL(%q): error %q does not say what is wanted", tt.url, err)
		}
	}
}

// http.tls: both files, and a pair that loads; each problem names its field.
func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "relay.crt"), filepath.Join(dir, "relay.key")
	relaytest.WriteCert(t, certFile, keyFile)
	otherCert, otherKey := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	relaytest.WriteCert(t, otherCert, otherKey)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := example(t)
	withTLS := func(tls string) string {
		return apply(t, base, []edit{{"  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  tls: " + tls}}, "")
	}
	c, err := config.Parse([]byte(withTLS("{cert_file: "+certFile+", key_file: "+keyFile+"}")), config.Options{})
	if err != nil {
		t.Fatalf("a valid pair: %v", err)
	}
	if !c.HTTP.TLS.Enabled() || c.HTTP.TLS.CertFile != certFile || c.HTTP.TLS.KeyFile != keyFile {
		t.Fatalf("http.tls = %+v", c.HTTP.TLS)
	}
	tests := []struct {
		name, tls, field, msg string
	}{
		{"key without certificate", "{key_file: " + keyFile + "}", "http.tls.cert_file", "required"},
		{"certificate without key", "{cert_file: " + certFile + "}", "http.tls.key_file", "required"},
		{"missing file", "{cert_file: " + filepath.Join(dir, "none.crt") + ", key_file: " + keyFile + "}", "http.tls.cert_file", "no such file"},
		{"key of another certificate", "{cert_file: " + certFile + ", key_file: " + otherKey + "}", "http.tls.cert_file", "does not match"},
		{"not PEM", "{cert_file: " + garbage + ", key_file: " + keyFile + "}", "http.tls.cert_file", "PEM"},
		{"unknown field", "{cert: " + certFile + "}", "http.tls.cert", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(withTLS(tt.tls)), config.Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.HasPrefix(ps[0], tt.field+": ") || !strings.Contains(ps[0], tt.msg) {
				t.Fatalf("problems %q, want one starting with %q containing %q", ps, tt.field+": ", tt.msg)
			}
		})
	}
}
