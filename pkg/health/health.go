// Package health knows whether this process can store and read through
// NATS JetStream, checked against JetStream itself rather than assumed
// from an open connection. It logs each change of the connection and of
// JetStream once, and counts what fails in between instead of logging it
// request by request (contract section 10).
package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Check periods. A check that has not answered within CheckTimeout counts
// as a failure, so an outage shows within Period+CheckTimeout, a recovery
// within Period after NATS reconnects.
const (
	Period       = time.Second
	CheckTimeout = 2 * time.Second
	// SummaryEvery is how often repeated failures are summarised.
	SummaryEvery = time.Minute
)

// Monitor follows the NATS connection and checks JetStream periodically.
// The zero value is not usable; make one with New.
type Monitor struct {
	log     *zap.Logger
	streams []string
	nc      *nats.Conn
	js      jetstream.JetStream

	connected atomic.Bool
	mu        sync.Mutex
	lostAt    time.Time // when the connection was lost (zero while connected)
	ok        bool      // JetStream answered the last check
	reason    string    // why not, when !ok
	since     time.Time // when ok last changed
	checked   bool      // a check has completed
	refused   int       // requests refused since the last summary
	duringOut int       // requests refused during the current outage

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a monitor that will check that every one of streams
// answers. Give its ConnOptions to nats.Connect, then Start it.
func New(log *zap.Logger, streams ...string) *Monitor {
	return &Monitor{log: log, streams: streams, stop: make(chan struct{})}
}

// ConnOptions are the handlers a connection of the relay needs: the
// connection's state changes reported to m and logged once, and nats.go's
// asynchronous errors (a slow consumer among them) logged through zap
// instead of stderr. onClosed, when set, runs once the connection closes.
func (m *Monitor) ConnOptions(onClosed func()) []nats.Option {
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() || nc.IsDraining() {
				return // a graceful stop, not a loss
			}
			if !m.connected.Swap(false) {
				return // already known
			}
			m.mu.Lock()
			m.lostAt = time.Now()
			m.mu.Unlock()
			m.log.Warn("NATS connection lost; reconnecting", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			if m.connected.Swap(true) {
				return
			}
			m.mu.Lock()
			down := time.Since(m.lostAt)
			m.lostAt = time.Time{}
			m.mu.Unlock()
			m.log.Info("NATS connection restored", zap.String("url", nc.ConnectedUrlRedacted()),
				zap.Duration("down_for", down.Round(time.Millisecond)))
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			m.connected.Store(false)
			m.log.Info("NATS connection closed")
			if onClosed != nil {
				onClosed()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			if errors.Is(err, nats.ErrSlowConsumer) {
				m.log.Error("NATS dropped messages of a slow subscription; they come again after their ack wait", fields...)
				return
			}
			m.log.Warn("NATS asynchronous error", fields...)
		}),
	}
}

// Start checks JetStream now and then every Period until Close. nc must
// have been made with m's ConnOptions.
func (m *Monitor) Start(nc *nats.Conn, js jetstream.JetStream) {
	m.nc, m.js = nc, js
	m.connected.Store(nc.IsConnected())
	m.check()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(Period)
		defer t.Stop()
		summary := time.NewTicker(SummaryEvery)
		defer summary.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.check()
			case <-summary.C:
				m.summarise()
			}
		}
	}()
}

// Close stops the checks.
func (m *Monitor) Close() {
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	m.wg.Wait()
}

// Ready reports whether JetStream answered the last check, and why not.
func (m *Monitor) Ready() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.checked {
		return false, "JetStream not checked yet"
	}
	if !m.connected.Load() {
		return false, "NATS connection lost; reconnecting" // known at once, before the next check
	}
	return m.ok, m.reason
}

// Refused counts a request refused with 503: logged as a count every
// SummaryEvery and when JetStream returns, not one by one.
func (m *Monitor) Refused() {
	m.mu.Lock()
	m.refused++
	if !m.ok {
		m.duringOut++
	}
	m.mu.Unlock()
}

// check asks JetStream for each stream's state, bounded by CheckTimeout,
// and records (and logs) a change.
func (m *Monitor) check() {
	err := m.probe()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checked = true
	switch {
	case err != nil && (m.ok || m.since.IsZero()):
		m.ok, m.reason, m.since = false, err.Error(), time.Now()
		m.log.Warn("JetStream unavailable: requests answer 503 until it returns", zap.String("reason", m.reason))
	case err != nil:
		m.reason = err.Error() // the reason may change during an outage; its start does not
	case !m.ok:
		if !m.since.IsZero() {
			m.log.Info("JetStream available again", zap.Duration("down_for", time.Since(m.since).Round(time.Millisecond)),
				zap.Int("requests_refused", m.duringOut))
		}
		m.ok, m.reason, m.since, m.duringOut = true, "", time.Now(), 0
	}
}

// probe is one check: the connection is up and every stream answers.
func (m *Monitor) probe() error {
	if !m.nc.IsConnected() {
		return fmt.Errorf("NATS connection %s", natsStatus(m.nc.Status()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), CheckTimeout)
	defer cancel()
	for _, name := range m.streams {
		s, err := m.js.Stream(ctx, name)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("JetStream did not answer for stream %s within %v", name, CheckTimeout)
			}
			if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
				return fmt.Errorf("JetStream is not enabled on the NATS server (%v)", err)
			}
			return fmt.Errorf("JetStream stream %s: %w", name, err)
		}
		if err := Quorum("stream "+name, s.CachedInfo().Cluster); err != nil {
			return err
		}
	}
	return nil
}

// PeerSilence is how long a replica may go unheard (Raft heartbeats come
// every second) before it no longer counts towards its stream's quorum.
const PeerSilence = 3 * time.Second

// Quorum reports a replicated stream or consumer (what) that cannot store:
// no leader, or a leader that has not heard enough of its replicas lately.
// A leader that lost its quorum keeps answering for a while (nats-server
// steps it down after 10 s), but no write commits.
func Quorum(what string, ci *jetstream.ClusterInfo) error {
	if ci == nil || len(ci.Replicas) == 0 {
		return nil // one server, or one replica
	}
	if ci.Leader == "" {
		return fmt.Errorf("JetStream %s has no leader (quorum lost)", what)
	}
	up := 1 // the leader
	for _, p := range ci.Replicas {
		if p.Current && !p.Offline && p.Active < PeerSilence {
			up++
		}
	}
	if n := len(ci.Replicas) + 1; up < n/2+1 {
		return fmt.Errorf("JetStream %s has lost its quorum: %d of %d replicas answer", what, up, n)
	}
	return nil
}

// summarise logs the requests refused since the last summary.
func (m *Monitor) summarise() {
	m.mu.Lock()
	n, ok, reason := m.refused, m.ok, m.reason
	m.refused = 0
	m.mu.Unlock()
	if n == 0 {
		return
	}
	if !ok {
		m.log.Warn("requests refused with 503 while JetStream is unavailable", zap.Int("requests", n),
			zap.Duration("period", SummaryEvery), zap.String("reason", reason))
		return
	}
	m.log.Warn("requests refused with 503 while JetStream answers (a full store, slow answers or limits.max_in_flight)",
		zap.Int("requests", n), zap.Duration("period", SummaryEvery))
}

func natsStatus(s nats.Status) string {
	switch s {
	case nats.RECONNECTING, nats.DISCONNECTED:
		return "lost; reconnecting"
	case nats.CLOSED:
		return "closed"
	case nats.DRAINING_PUBS, nats.DRAINING_SUBS:
		return "draining"
	}
	return s.String()
}

// Streak logs the failures of an operation retried in a loop once: the
// first failure, a count every SummaryEvery while they go on, and the
// recovery. Set Log and What before use; safe for concurrent use.
type Streak struct {
	Log  *zap.Logger
	What string // what fails, e.g. "audit: reading the log"

	mu     sync.Mutex
	n      int // failures in this streak
	since  time.Time
	logged time.Time // last summary
}

// Fail records a failure of the operation.
func (s *Streak) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.n++
	switch {
	case s.n == 1:
		s.since, s.logged = now, now
		s.Log.Warn(s.What+" failed; retrying, logging a count every minute", zap.Error(err))
	case now.Sub(s.logged) >= SummaryEvery:
		s.logged = now
		s.Log.Warn(s.What+" still failing", zap.Int("failures", s.n),
			zap.Duration("since", now.Sub(s.since).Round(time.Second)), zap.Error(err))
	}
}

// OK records a success, which ends a streak of failures.
func (s *Streak) OK() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return
	}
	s.Log.Info(s.What+" works again", zap.Int("failures", s.n),
		zap.Duration("after", time.Since(s.since).Round(time.Millisecond)))
	s.n = 0
}
