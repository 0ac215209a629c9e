// Package relay assembles a noticerelay process: it connects to NATS (or
// embeds a server for `dev`), ensures the streams, starts the selected
// services and serves their HTTP routes with health, readiness and metrics
// on one listener. `main` and the tests start the relay the same way.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/health"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/reload"
	"github.com/noticerelay/noticerelay/pkg/share"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Options say what to run.
type Options struct {
	Config *config.Config
	// Embedded runs an embedded NATS server with its store under DataDir
	// (`dev`); otherwise the relay connects to Config.NATS.URL.
	Embedded bool
	DataDir  string
	// DefaultSync runs the embedded server without an fsync per write.
	DefaultSync bool
	// Services to run; empty runs all.
	Services []string
	Log      *zap.Logger
	// Listener, if set, serves HTTP instead of Config.HTTP.Listen.
	Listener net.Listener
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Relay is a running relay process.
type Relay struct {
	opts     Options
	log      *zap.Logger
	server   *embedded.Server
	nc       *nats.Conn
	http     *http.Server
	tls      *tls.Config // of the listener; nil: plain HTTP
	ln       net.Listener
	services []module.Service
	ready    atomic.Bool
	cancel   context.CancelFunc
	served   chan error
	closed   chan struct{}  // closed when the NATS connection has closed
	cfg      *config.Config // the configuration in force (with dev's keys)
	commits  *stream.GroupCommit
	health   *health.Monitor
}

// How `serve` notices a NATS server that went silent: a ping every
// pingInterval, and the connection given up (and another server tried)
// once maxPingsOut pings are unanswered.
const (
	pingInterval = 2 * time.Second
	maxPingsOut  = 2
)

// Start starts the relay and returns once every service is serving.
func Start(ctx context.Context, o Options) (_ *Relay, err error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	mods, err := selectModules(o.Services)
	if err != nil {
		return nil, err
	}
	r := &Relay{opts: o, log: o.Log, served: make(chan error, 1), closed: make(chan struct{}),
		health: health.New(o.Log, stream.Notices, stream.Events, stream.Deliveries)}
	connOpts := r.health.ConnOptions(func() { close(r.closed) })
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if o.Embedded {
		var storeKey string
		if storeKey, err = r.storeKey(); err != nil {
			return nil, err
		}
		r.server, err = embedded.Start(embedded.Options{DataDir: o.DataDir, Listen: o.Config.NATS.Listen, DefaultSync: o.DefaultSync,
			StoreKey: storeKey})
		if err != nil {
			return nil, err
		}
		r.nc, err = r.server.Connect("noticerelay", connOpts...)
		if err == nil && o.Config.NATS.Listen != "" {
			r.log.Info("embedded NATS accepting clients", zap.String("url", r.server.ClientURL()))
		}
	} else {
		// A server cut off the network (a partition, a dead host) closes
		// nothing: without a ping every 2 s and at most two unanswered,
		// the connection would be trusted for nats.go's default of two
		// minutes per ping, and every request would answer 503 meanwhile
		// instead of moving to another node.
		opts := append([]nats.Option{nats.Name("noticerelay"), nats.MaxReconnects(-1),
			nats.PingInterval(pingInterval), nats.MaxPingsOutstanding(maxPingsOut)}, connOpts...)
		if o.Config.NATS.Creds != "" {
			opts = append(opts, nats.UserCredentials(o.Config.NATS.Creds))
		}
		r.nc, err = nats.Connect(o.Config.NATS.URL, opts...)
		if err != nil {
			err = fmt.Errorf("connecting to NATS at %s: %w", o.Config.NATS.URL, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if mp := r.nc.MaxPayload(); mp < 2<<20 {
		// A 1 MiB notice plus its envelope does not fit: such notices
		// would be refused with 413 until max_payload is raised.
		r.log.Warn("the NATS server's max_payload is below 2 MiB; set max_payload: 8MB so that notices up to 1 MiB fit",
			zap.Int64("max_payload", mp))
	}
	// A request's calls to the store are bounded by http.store_timeout
	// (module.Env.StoreContext), so that no caller hangs on an outage
	// (contract section 10); so is a call without a deadline. The
	// background stages wait for a group commit as long as it may take.
	js, err := jetstream.New(r.nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithDefaultTimeout(time.Duration(o.Config.HTTP.StoreTimeout)))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	r.commits = stream.NewGroupCommit(js, stream.FlushTimeout)
	replicas := o.Config.NATS.Replicas
	if replicas == 0 {
		replicas = 1
		if r.nc.ConnectedClusterName() != "" {
			replicas = 3
		}
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := stream.Ensure(ectx, js, stream.Topology{
		Replicas:       replicas,
		Retention:      time.Duration(o.Config.Retention.Notices),
		NoticeMaxBytes: o.Config.Limits.NoticeStoreBytes,
	}); err != nil {
		return nil, err
	}

	key, err := r.pseudonymKey(ectx, js, replicas)
	if err != nil {
		return nil, err
	}
	if o.Config, err = r.devAuditKeys(o.Config); err != nil {
		return nil, err
	}
	r.cfg = o.Config

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	env := &module.Env{Config: o.Config, NC: r.nc, JS: js, Publisher: r.commits, Log: o.Log, Metrics: reg,
		Auth: auth.NewDirectory(o.Config), Mux: mux, Now: o.Now, Pseudonyms: event.NewPseudonyms(key), Ready: r.health.Ready,
		Shares: share.New(o.Config.Limits.PerCaller, o.Now)}
	runCtx, stop := context.WithCancel(context.Background())
	r.cancel = stop
	for _, m := range mods {
		s := m.new(env)
		if err := s.Start(runCtx); err != nil {
			return nil, fmt.Errorf("starting %s: %w", m.name, err)
		}
		r.services = append(r.services, s)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", r.readyz)
	r.health.Start(r.nc, js)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	r.ln = o.Listener
	if r.ln == nil {
		if r.ln, err = net.Listen("tcp", o.Config.HTTP.Listen); err != nil {
			return nil, fmt.Errorf("http.listen %s: %w", o.Config.HTTP.Listen, err)
		}
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "noticerelay_http_connections_refused_total",
		Help: "Connections closed at once because the listener (limits.max_connections) or their source (limits.max_connections_per_source) was at its cap.",
	}, []string{"cap"})
	reg.MustRegister(refused)
	r.ln = httpapi.LimitListener(r.ln, o.Config.Limits.MaxConnections, o.Config.Limits.MaxConnectionsPerSource,
		func(reason string) { refused.WithLabelValues(reason).Inc() })
	r.http = &http.Server{Handler: r.countRefusals(mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: zap.NewStdLog(o.Log)}
	if o.Config.HTTP.TLS.Enabled() {
		if r.tls, err = reload.ListenerTLS(o.Config.HTTP.TLS.CertFile, o.Config.HTTP.TLS.KeyFile, r.log); err != nil {
			return nil, err
		}
		r.http.TLSConfig = r.tls
	}
	go func() { r.served <- r.serve() }()
	r.ready.Store(true)
	r.log.Info("relay ready", zap.String("url", r.URL()), zap.Strings("services", names(mods)))
	return r, nil
}

func names(ms []moduleDef) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.name
	}
	return out
}

// readyz answers 200 once streams exist and every service is consuming,
// and while JetStream answers (health.Monitor); 503 with the reason
// otherwise.
func (r *Relay) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	reason := "starting or stopping"
	ok := r.ready.Load()
	if ok {
		ok, reason = r.health.Ready()
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(httpapi.RetryAfter))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %s\n", reason)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// countRefusals counts every 503 for the health monitor's summaries: the
// handlers do not log them one by one.
func (r *Relay) countRefusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, req)
		if sw.status == http.StatusServiceUnavailable && req.URL.Path != "/readyz" {
			r.health.Refused()
		}
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Addr is the HTTP listener's address.
func (r *Relay) Addr() string {
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// URL is the HTTP listener's base URL: https:// when http.tls is set.
func (r *Relay) URL() string {
	if r.tls != nil {
		return "https://" + r.Addr()
	}
	return "http://" + r.Addr()
}

// serve serves HTTP, or HTTPS with the listener's TLS configuration, on
// the listener until the server is shut down.
func (r *Relay) serve() error {
	if r.tls != nil {
		return r.http.ServeTLS(r.ln, "", "")
	}
	return r.http.Serve(r.ln)
}

// NATSURL is the embedded server's client URL, when it listens.
func (r *Relay) NATSURL() string {
	if r.server == nil || r.opts.Config.NATS.Listen == "" {
		return ""
	}
	return r.server.ClientURL()
}

// Served returns the error that ended the HTTP server, if it ended.
func (r *Relay) Served() <-chan error { return r.served }

// Close stops the relay gracefully: no new requests, in-flight requests
// finished, consumers stopped after their batch in hand, the connection
// drained (pending publishes and acks flushed), then the embedded server.
func (r *Relay) Close() error {
	r.ready.Store(false)
	var errs []error
	if r.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := r.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		cancel()
	}
	if r.cancel != nil {
		r.cancel()
	}
	for _, s := range r.services {
		s.Wait()
	}
	if r.commits != nil {
		r.commits.Close()
	}
	r.health.Close()
	if r.nc != nil {
		if err := r.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("nats drain: %w", err))
		}
		select {
		case <-r.closed:
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("nats drain: not closed after 30s"))
		}
	}
	if r.server != nil {
		r.server.Stop()
	}
	return errors.Join(errs...)
}

// Config is the configuration in force, with the keys `dev` made.
func (r *Relay) Config() *config.Config { return r.cfg }

// Conn is the relay's NATS connection (for tests and tooling in-process).
func (r *Relay) Conn() *nats.Conn { return r.nc }
