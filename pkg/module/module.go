// Package module is what the relay hands each of its services: the
// configuration, the NATS connection, the HTTP router, logs and metrics.
package module

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/share"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Env is the environment of one relay process, shared by its services.
type Env struct {
	Config *config.Config
	NC     *nats.Conn
	JS     jetstream.JetStream
	// Publisher stores what the services write: the group commit.
	Publisher stream.Publisher
	Log       *zap.Logger
	Metrics   prometheus.Registerer
	Auth      *auth.Directory
	Mux       *http.ServeMux
	// Pseudonyms name notices in lifecycle events.
	Pseudonyms *event.Pseudonyms
	// Shares are each caller's share of the process (limits.per_caller).
	Shares *share.Shares
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Ready says whether JetStream answered its last check and why not
	// (pkg/health): a request that could only find out by waiting answers
	// 503 at once. Nil means always.
	Ready func() (bool, string)
}

// Service is one module of the relay. Start registers its HTTP routes and
// starts its consumers; it returns once the service is serving, and the
// service stops when ctx is cancelled. Wait blocks until it has stopped.
type Service interface {
	Start(ctx context.Context) error
	Wait()
}

// Stream returns the handle of a stream by name. On a cluster its reads
// of one subject see every write the stream acknowledged (see
// stream.ReadYourWrites): what a service answers a caller must not depend
// on which replica a direct get reached.
func (e *Env) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := e.JS.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return stream.ReadYourWrites(s, e.JS), nil
}

// StoreContext bounds the store calls of one request by
// http.store_timeout: past it, the request answers 503 instead of hanging
// on an outage (contract section 10).
func (e *Env) StoreContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Duration(e.Config.HTTP.StoreTimeout))
}

// Admit starts a request of the API: it answers 401 unless the caller is
// authenticated as role, then runs read (nil: nothing to read), which
// reads what the request sends and answers itself when it returns false,
// and only then takes a slot of the caller's share (429 when it has
// none), so that a slow body holds nothing the others need. With ok
// false the answer is written; otherwise release gives the slot back.
func (e *Env) Admit(w http.ResponseWriter, r *http.Request, role auth.Role, read func() bool) (p auth.Principal, release func(), ok bool) {
	p, ok = e.Auth.FromRequest(r, role)
	if !ok {
		httpapi.Unauthorized(w)
		return p, nil, false
	}
	if read != nil && !read() {
		return p, nil, false
	}
	release, ok = e.Shares.Admit(w, p.ID, share.Normal)
	return p, release, ok
}

// Timestamp formats t the way every API answer does (RFC 3339, UTC, ms).
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
