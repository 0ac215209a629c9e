// Package push delivers to the authorities that asked for a webhook: it
// drains each one's queue (urgent before normal) through the same durable
// consumers the inbox would use, POSTs every delivery signed with the
// authority's secret (pkg/webhook), and records the receiver's 2xx as the
// authority's receipt, the way the inbox records an acknowledgement. A
// failed POST is retried with exponential backoff and jitter by
// redelivery from JetStream, so a retry survives restarts; a delivery
// that exhausts its budget moves to the dead-letter stream, with an event
// and a metric, until `noticerelay deliveries redrive` sends it again.
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/message"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
	"github.com/noticerelay/noticerelay/pkg/webhook"
)

// Name is the service's name in `serve --services` and in events.
const Name = "push"

// idleWait is how long a worker waits for a normal delivery before it
// looks for urgent ones again: the most an urgent delivery waits behind
// an idle wait.
const idleWait = 250 * time.Millisecond

// Service is the push service.
type Service struct {
	env      *module.Env
	settings config.WebhookSettings
	client   *http.Client
	events   jetstream.Stream
	// posts counts the POSTs made of each delivery message (KV
	// NR_PUSH_POSTS): the attempts of the retry budget.
	posts   jetstream.KeyValue
	targets []*target
	wg      sync.WaitGroup

	attempts *prometheus.CounterVec
	dead     *prometheus.CounterVec
}

// target is one webhook authority, or one platform's notify URL.
type target struct {
	// authority names the target in logs and metrics: an authority's id,
	// or a platform's.
	authority string
	// recipient names it in events: the authority's id, or "platform".
	recipient string
	url       string
	secret    []byte
	consumers []jetstream.Consumer // in delivery.Priorities order
}

// New returns the push service.
func New(env *module.Env) *Service {
	s := &Service{
		env:      env,
		settings: env.Config.Deliveries.Webhook,
		client: &http.Client{
			// A redirect is an answer, not a receipt: the configured URL
			// is the only one a delivery may go to.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_push_attempts_total",
			Help: "Webhook POSTs, by authority and outcome (ok, failed).",
		}, []string{"authority", "outcome"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_push_dead_lettered_total",
			Help: "Deliveries moved to the dead-letter stream after exhausting their retry budget, by authority.",
		}, []string{"authority"}),
	}
	env.Metrics.MustRegister(s.attempts, s.dead)
	return s
}

// Start creates the webhook authorities' consumers and starts one worker
// per authority.
func (s *Service) Start(ctx context.Context) error {
	var err error
	if s.events, err = s.env.Stream(ctx, stream.Events); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if s.posts, err = s.env.JS.KeyValue(ctx, stream.PushBucket); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	for _, a := range s.env.Config.Authorities {
		if !a.Webhook() {
			continue
		}
		t, err := s.target(ctx, a.ID, a.ID, a.Delivery.URL, a.Delivery.SecretEnv, delivery.Priorities(), "deliveries of "+a.ID)
		if err != nil {
			return err
		}
		s.targets = append(s.targets, t)
	}
	// A platform with a notify URL gets the messages authorities send it
	// the same way (contract section 8).
	for _, p := range s.env.Config.Platforms {
		if p.Notify == nil {
			continue
		}
		t, err := s.target(ctx, p.ID, message.Platform, p.Notify.URL, p.Notify.SecretEnv,
			[]string{stream.NotifyPriority}, "messages to platform "+p.ID)
		if err != nil {
			return err
		}
		s.targets = append(s.targets, t)
	}
	for _, t := range s.targets {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, t)
		}()
	}
	return nil
}

// target creates the consumers of one push target, one per queue (in the
// order they are drained).
func (s *Service) target(ctx context.Context, id, recipient, url, secretEnv string, queues []string, what string) (*target, error) {
	secret := os.Getenv(secretEnv)
	if len(secret) < 16 {
		return nil, fmt.Errorf("push: %s: environment variable %s must hold the webhook secret", id, secretEnv)
	}
	t := &target{authority: id, recipient: recipient, url: url, secret: []byte(secret)}
	for _, q := range queues {
		name := delivery.ConsumerName(id, q)
		if q == stream.NotifyPriority {
			name = NotifyConsumer(id)
		}
		cfg := stream.Durable(name, fmt.Sprintf("%s %s (pushed to its URL)", q, what), stream.DeliveryFilter(id, q))
		cfg.AckWait, cfg.MaxAckPending = time.Duration(s.settings.Timeout)+30*time.Second, 10000
		c, err := s.env.JS.CreateOrUpdateConsumer(ctx, stream.Deliveries, cfg)
		if err != nil {
			return nil, fmt.Errorf("push: creating consumer for %s: %w", id, err)
		}
		t.consumers = append(t.consumers, c)
	}
	return t, nil
}

// NotifyConsumer is the durable consumer of platform's notify queue.
func NotifyConsumer(platform string) string { return "notify-" + platform }

// Wait blocks until every worker has stopped.
func (s *Service) Wait() { s.wg.Wait() }

// run pushes t's deliveries one at a time, urgent ones first, until ctx is
// cancelled. One at a time keeps the order and bounds the load on the
// receiver; a failing delivery does not block the others, since it waits
// for its retry in JetStream, not here.
func (s *Service) run(ctx context.Context, t *target) {
	for ctx.Err() == nil {
		m, err := next(t)
		if err != nil {
			s.env.Log.Warn("push: fetch", zap.String("authority", t.authority), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if m == nil {
			continue
		}
		if ctx.Err() != nil {
			_ = m.Nak() // shutting down: let the next process have it now
			return
		}
		s.deliver(ctx, t, m)
	}
}

// next returns t's next delivery: an urgent one if any is waiting, else a
// normal one (waiting up to idleWait for it), else nil.
func next(t *target) (jetstream.Msg, error) {
	for i, c := range t.consumers {
		var batch jetstream.MessageBatch
		var err error
		if i == len(t.consumers)-1 {
			batch, err = c.Fetch(1, jetstream.FetchMaxWait(idleWait))
		} else {
			batch, err = c.FetchNoWait(1)
		}
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			return m, nil
		}
	}
	return nil, nil
}

// deliver POSTs one delivery and settles its message.
func (s *Service) deliver(ctx context.Context, t *target, m jetstream.Msg) {
	d, err := delivery.Decode(m.Data())
	if err != nil {
		if stream.Poisoned(ctx, s.env.JS, s.env.Log, m, Name, s.env.Config.Deliveries.PoisonAttempts,
			fault.E("push: unreadable delivery", fault.Poison, err)) {
			s.dead.WithLabelValues(t.authority).Inc()
		}
		return
	}
	// JetStream's count of deliveries paces the retries of reads that
	// failed before any POST; the retry budget counts POSTs (attempt).
	delivered, seq := uint64(1), uint64(0)
	if md, err := m.Metadata(); err == nil {
		delivered, seq = md.NumDelivered, md.Sequence.Stream
	}
	if held, err := delivery.Withheld(ctx, s.events, s.env.Pseudonyms, d); err != nil {
		_ = m.NakWithDelay(stream.Backoff(delivered))
		return
	} else if held {
		stream.Ack(s.env.Log, Name, m) // a file of a withdrawn notice, never sent
		return
	}
	ack := d.Event(s.env.Pseudonyms, event.Acknowledged, t.recipient, Name, s.env.Now())
	switch _, err := stream.Get(ctx, s.events, ack.Subject()); {
	case err == nil:
		stream.Ack(s.env.Log, Name, m) // received before (a crash between receipt and ack)
		return
	case !fault.Is(err, fault.NotFound):
		s.env.Log.Warn("push: reading receipt", zap.String("delivery", d.ID), zap.Error(err))
		_ = m.NakWithDelay(stream.Backoff(delivered))
		return
	}
	body, err := json.Marshal(d.Out())
	if err != nil {
		stream.Poisoned(ctx, s.env.JS, s.env.Log, m, Name, s.env.Config.Deliveries.PoisonAttempts,
			fault.E("push: encoding delivery", fault.Poison, err))
		return
	}
	key := strconv.FormatUint(seq, 10)
	attempt, err := s.countPost(ctx, key)
	if err != nil {
		s.env.Log.Warn("push: counting the attempt", zap.String("delivery", d.ID), zap.Error(err))
		_ = m.NakWithDelay(stream.Backoff(delivered))
		return
	}
	err = s.post(ctx, t, d, attempt, body)
	if err == nil {
		s.attempts.WithLabelValues(t.authority, "ok").Inc()
		if s.received(ctx, t, d, m) {
			s.forget(key)
		}
		return
	}
	s.attempts.WithLabelValues(t.authority, "failed").Inc()
	if ctx.Err() != nil {
		_ = m.Nak()
		return
	}
	if attempt < uint64(s.settings.MaxAttempts) {
		wait := s.backoff(attempt)
		s.env.Log.Warn("push: delivery failed; will retry", zap.String("authority", t.authority),
			zap.String("delivery", d.ID), zap.Uint64("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		_ = m.NakWithDelay(wait)
		return
	}
	if s.deadLetter(ctx, t, d, m, attempt, fmt.Sprintf("webhook: %d attempts failed, last: %v", attempt, err)) {
		s.forget(key) // a redrive is a new message, with a budget of its own
	}
}

// countPost records one more POST of the delivery message under key, and
// returns its number (1, 2, ...). It is stored before the POST is made, so
// that a POST cut short by a crash counts too.
func (s *Service) countPost(ctx context.Context, key string) (uint64, error) {
	for range 3 {
		var n, rev uint64
		e, err := s.posts.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, fmt.Errorf("reading %s: %w", stream.PushBucket, err)
		default:
			if n, err = strconv.ParseUint(string(e.Value()), 10, 64); err != nil {
				return 0, fmt.Errorf("reading %s: %w", stream.PushBucket, err)
			}
			rev = e.Revision()
		}
		n++
		v := []byte(strconv.FormatUint(n, 10))
		if rev == 0 {
			_, err = s.posts.Create(ctx, key, v)
		} else {
			_, err = s.posts.Update(ctx, key, v, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // counted meanwhile by another process: read again
		}
		if err != nil {
			return 0, fmt.Errorf("writing %s: %w", stream.PushBucket, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: key %s kept changing", stream.PushBucket, key)
}

// forget deletes the count of a delivery message that is settled for good
// (else it expires with retention.notices).
func (s *Service) forget(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.posts.Delete(ctx, key); err != nil {
		s.env.Log.Warn("push: deleting the count of POSTs", zap.String("key", key), zap.Error(err))
	}
}

// received records the receipt of d (delivered and acknowledged events,
// exactly as the inbox does) and only then acks the message: a crash in
// between makes the next worker find the receipt and ack without a POST.
// It reports whether the message was acked.
func (s *Service) received(ctx context.Context, t *target, d *delivery.Delivery, m jetstream.Msg) bool {
	msgs, err := d.Receipt(s.env.Pseudonyms, t.recipient, Name, s.env.Now())
	if err != nil {
		s.env.Log.Error("push: encoding receipt", zap.Error(err))
		_ = m.Nak()
		return false
	}
	if err := stream.Store(ctx, s.env.Publisher, msgs...); err != nil {
		// The receiver has it; it will get it again and must dedupe by id.
		s.env.Log.Warn("push: recording receipt failed; will deliver again", zap.String("delivery", d.ID), zap.Error(err))
		_ = m.NakWithDelay(time.Second)
		return false
	}
	if err := m.DoubleAck(ctx); err != nil {
		s.env.Log.Warn("push: ack", zap.String("delivery", d.ID), zap.Error(err))
		return false
	}
	return true
}

// deadLetter moves d to the dead-letter stream, with the number of POSTs
// made, records the event and terminates the message; if the copy cannot
// be stored, d is retried later. It reports whether d was dead-lettered.
func (s *Service) deadLetter(ctx context.Context, t *target, d *delivery.Delivery, m jetstream.Msg, posts uint64, reason string) bool {
	if err := stream.DeadLetter(ctx, s.env.JS, m, "push", reason, posts); err != nil {
		s.env.Log.Error("push: storing dead letter failed; will retry", zap.String("delivery", d.ID), zap.Error(err))
		_ = m.NakWithDelay(time.Duration(s.settings.MaxBackoff))
		return false
	}
	ev := d.Event(s.env.Pseudonyms, event.DeadLettered, t.recipient, Name, s.env.Now())
	if em, err := ev.Message(); err == nil {
		if err := stream.Store(ctx, s.env.Publisher, em); err != nil {
			s.env.Log.Error("push: recording dead_lettered event", zap.String("delivery", d.ID), zap.Error(err))
		}
	}
	s.dead.WithLabelValues(t.authority).Inc()
	s.env.Log.Error("push: delivery dead-lettered; `noticerelay deliveries redrive` sends it again",
		zap.String("authority", t.authority), zap.String("delivery", d.ID), zap.String("reason", reason))
	_ = m.TermWithReason(reason)
	return true
}

// post sends one signed attempt; nil means the receiver answered 2xx.
func (s *Service) post(ctx context.Context, t *target, d *delivery.Delivery, attempt uint64, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.settings.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "noticerelay-push/1")
	req.Header.Set(webhook.HeaderAttempt, fmt.Sprint(attempt))
	webhook.Sign(req.Header, t.secret, webhook.Signed{Delivery: d.ID, Type: d.Type, Timestamp: s.env.Now()}, body)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST: HTTP %d", resp.StatusCode)
	}
	return nil
}

// backoff is the wait before attempt+1: Backoff doubling per attempt up to
// MaxBackoff, with jitter (half fixed, half random) so that many failed
// deliveries do not retry in step.
func (s *Service) backoff(attempt uint64) time.Duration {
	d := time.Duration(s.settings.Backoff)
	ceiling := time.Duration(s.settings.MaxBackoff)
	for i := uint64(1); i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
}
