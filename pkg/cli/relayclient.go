package cli

import (
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/noticerelay/noticerelay/pkg/config"
)

// relayURL checks the base URL of a relay that a tool sends tokens and
// notices to: https, or http only to a loopback address (config.SecureURL).
// It returns the URL without a trailing slash.
func relayURL(raw string) (string, error) {
	if _, err := config.SecureURL(raw); err != nil {
		return "", err
	}
	return strings.TrimRight(raw, "/"), nil
}

// caTLS is the TLS configuration of a tool's client (config.CATLS).
func caTLS(caFile string) (*tls.Config, error) { return config.CATLS(caFile) }

// relayClient is the HTTP client of a tool that sends a token to a relay.
// It follows no redirect: the relay's API answers none, and following one
// could carry the token to another scheme or host.
func relayClient(tlsConfig *tls.Config, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	return &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: refuseRedirect}
}

func refuseRedirect(*http.Request, []*http.Request) error {
	return errors.New("the relay answered with a redirect, which is not followed")
}
