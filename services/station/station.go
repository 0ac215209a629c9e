// Package station is the receiving station: the program an authority runs
// inside its own network. It pulls the authority's deliveries from the
// relay (urgent first), opens sealed ones with the authority's own age
// identity, stores each in its SQLite database in one transaction, and only
// then acknowledges them; and it serves the analysts a web application to
// read, triage and answer the notices, logging every access.
package station

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/inboxclient"
	"github.com/noticerelay/noticerelay/pkg/reload"
	store "github.com/noticerelay/noticerelay/pkg/station"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// Options start a station.
type Options struct {
	Config *Config
	Log    *zap.Logger
	// Listener, when set, is used instead of listening on http.listen.
	Listener net.Listener
	// PollInterval is how long the receiver waits when the relay's queue
	// is empty (default 2 s); after a failure it backs off up to 15 times
	// as long.
	PollInterval time.Duration
	// SessionTTL is how long a sign-in lasts (default 8 h: one shift).
	SessionTTL time.Duration
}

// Station is a running station.
type Station struct {
	cfg    *Config
	log    *zap.Logger
	store  *store.Store
	client *inboxclient.Client
	app    *web.App
	srv    *http.Server
	ln     net.Listener
	served chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup
	poll   time.Duration
}

// Start opens the database, starts receiving and serves the web pages.
func Start(ctx context.Context, o Options) (*Station, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	st, err := store.Open(ctx, o.Config.Data)
	if err != nil {
		return nil, err
	}
	s := &Station{cfg: o.Config, log: o.Log, store: st, poll: o.PollInterval, served: make(chan error, 1),
		client: inboxclient.New(o.Config.Relay.URL, o.Config.token, 100, o.Config.relayClient())}
	s.app = &web.App{SiteOf: s.site, Accounts: o.Config.accounts(), Sessions: st, SessionTTL: o.SessionTTL,
		Secure: o.Config.TLS(), Nav: s.nav, Alerts: s.alerts, Log: o.Log, SignIn: s.signIn,
		OnSignIn: func(ctx context.Context, user string) error {
			return st.Log(ctx, store.Access{At: time.Now(), User: user, Action: store.ActionSignIn})
		},
		OnSignOut: func(ctx context.Context, user string) error {
			return st.Log(ctx, store.Access{At: time.Now(), User: user, Action: store.ActionSignOut})
		}}
	if err := s.app.Parse(templates(), funcs); err != nil {
		st.Close()
		return nil, err
	}
	s.ln = o.Listener
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", o.Config.HTTP.Listen); err != nil {
			st.Close()
			return nil, fmt.Errorf("http.listen: %w", err)
		}
	}
	if t := o.Config.HTTP.TLS; t.Enabled() {
		tc, err := reload.ListenerTLS(t.CertFile, t.KeyFile, o.Log)
		if err != nil {
			s.ln.Close()
			st.Close()
			return nil, err
		}
		s.ln = tls.NewListener(s.ln, tc)
	}
	s.srv = &http.Server{Handler: s.app.Handler(s.routes()), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.receive(rctx)
	}()
	go func() {
		defer s.wg.Done()
		s.sendLoop(rctx)
	}()
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.served <- err
		}
	}()
	return s, nil
}

// site names the station's authority: as configured, else as the relay
// named it for the station's token.
func (s *Station) site(r *http.Request) string {
	if s.cfg.Authority != "" {
		return s.cfg.Authority
	}
	st, err := s.store.Relay(r.Context())
	switch {
	case err != nil || st.Authority.ID == "":
		return "authority not yet named by the relay"
	case st.Authority.Name == "" || st.Authority.Name == st.Authority.ID:
		return st.Authority.ID
	}
	return st.Authority.Name + " (" + st.Authority.ID + ")"
}

// Addr is where the web pages are served.
func (s *Station) Addr() string { return s.ln.Addr().String() }

// Served reports the web server stopping by itself.
func (s *Station) Served() <-chan error { return s.served }

// Store is the station's database (for tests and tools).
func (s *Station) Store() *store.Store { return s.store }

// Close stops receiving (a delivery being stored is finished first, and
// one not acknowledged is handed out again by the relay), stops serving
// and closes the database.
func (s *Station) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.cancel()
	s.wg.Wait()
	return errors.Join(err, s.store.Close())
}
