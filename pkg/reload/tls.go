package reload

import (
	"crypto/tls"
	"fmt"

	"go.uber.org/zap"
)

// ListenerTLS is an HTTPS listener's TLS configuration: the certificate
// and key in certFile and keyFile, read again when either file changes
// (checked at most once a second, at a handshake), so a renewal needs no
// restart. A pair that does not load (a rotation half done) leaves the
// last good one serving. The relay and the receiving station both use it.
func ListenerTLS(certFile, keyFile string, log *zap.Logger) (*tls.Config, error) {
	load := func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("http.tls: %w", err)
		}
		return &cert, nil
	}
	certs, err := Open([]string{certFile, keyFile}, load, Options[*tls.Certificate]{
		OnReload: func(cert *tls.Certificate, err error) {
			if err != nil {
				log.Error("TLS certificate not reloaded; the previous one stays in use",
					zap.String("cert_file", certFile), zap.Error(err))
				return
			}
			log.Info("TLS certificate reloaded", zap.String("cert_file", certFile),
				zap.Time("not_after", cert.Leaf.NotAfter))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("http.tls: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return certs.Current(), nil
		},
	}, nil
}
