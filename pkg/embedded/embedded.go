// Package embedded runs a NATS server with JetStream inside the process,
// for `noticerelay dev` and for tests. Every write is fsynced.
package embedded

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure the embedded server.
type Options struct {
	// DataDir holds the JetStream store (under DataDir/jetstream).
	DataDir string
	// Listen is host:port to accept NATS clients on; empty accepts only
	// in-process connections.
	Listen string
	// DefaultSync turns off fsync on every write (JetStream's default of a
	// sync every two minutes), for benchmarks that compare the two.
	DefaultSync bool
	// StoreKey, when set, encrypts the whole JetStream store at rest
	// (ChaCha20-Poly1305, keys derived from StoreKey by the server).
	StoreKey string
}

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
}

// Start starts the server and waits until it is ready for connections.
func Start(o Options) (*Server, error) {
	opts := nodeOptions(o.DefaultSync)
	opts.ServerName = "noticerelay-dev"
	opts.StoreDir = filepath.Join(o.DataDir, "jetstream")
	if o.StoreKey != "" {
		opts.JetStreamCipher, opts.JetStreamKey = server.ChaCha, o.StoreKey
	}
	if o.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %q: bad port: %w", o.Listen, err)
		}
		opts.Host, opts.Port = host, p
		if p == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("creating embedded NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS server not ready after 30s")
	}
	return &Server{ns}, nil
}

// nodeOptions are the options every embedded node shares: JetStream,
// 8 MiB payloads, and an fsync on every write unless defaultSync.
func nodeOptions(defaultSync bool) *server.Options {
	opts := &server.Options{
		JetStream:          true,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 256 << 20,
	}
	if !defaultSync {
		// sync_interval: always. SyncInterval must be non-zero too, or the
		// server replaces it with its two-minute default.
		opts.SyncAlways = true
		opts.SyncInterval = 2 * time.Minute
	}
	return opts
}

// Connect opens an in-process client connection.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.Server), nats.Name(name), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to embedded NATS server: %w", err)
	}
	return nc, nil
}

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
