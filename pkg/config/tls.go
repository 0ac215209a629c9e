package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// TLS is the certificate of the HTTP listener. Both files are PEM; they
// are read again whenever either changes, so a renewed certificate takes
// effect at the next connection without a restart.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether the listener serves TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// check reports a missing half and a pair that does not load.
func (t TLS) check(p *problems) {
	switch {
	case !t.Enabled():
		return
	case t.CertFile == "":
		p.add("http.tls.cert_file", "is required with http.tls.key_file")
		return
	case t.KeyFile == "":
		p.add("http.tls.key_file", "is required with http.tls.cert_file")
		return
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		p.add("http.tls.cert_file", "with http.tls.key_file: %v", err)
	}
}

// SecureURL parses raw, a URL that notices or tokens will be sent to, and
// refuses it unless they would travel encrypted (contract section 10): it
// must be an absolute https:// URL, or http:// to a loopback address
// (127.0.0.0/8, ::1, localhost), which stays allowed for tests and
// sidecars on the same host. The error completes a sentence that starts
// with the field or flag name.
func SecureURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("must be an https:// URL (http:// only to a loopback address), not %q", raw)
	}
	if u.Scheme == "http" && !Loopback(u.Hostname()) {
		return nil, fmt.Errorf("must be an https:// URL: notices and tokens leave only over TLS; "+
			"http:// is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), not %q", raw)
	}
	return u, nil
}

// Loopback reports whether host (an IP address or a name, without port)
// is a loopback address: in 127.0.0.0/8, ::1 (also IPv4-mapped), or the
// name localhost.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// CATLS is the TLS configuration of a client of the relay: nil (the
// system's roots) without caFile, else one that trusts only the PEM
// certificates in caFile, such as a relay's self-signed certificate or a
// private CA. The relay's tools and the receiving station share it.
func CATLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
