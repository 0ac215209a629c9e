package stream

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/noticerelay/noticerelay/pkg/fault"
)

// Message is one message to store, with the deterministic id that makes a
// retry after a crash a no-op.
type Message struct {
	Subject string
	ID      string
	Data    []byte
	Header  nats.Header
	// Last, among a stage's outputs, is stored only once the others are:
	// it records that they are (escalation's escalated event).
	Last bool
}

func (m Message) nats() *nats.Msg {
	h := nats.Header{}
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(jetstream.MsgIDHeader, m.ID)
	return &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// Publish stores m directly, without group commit, and returns its stream
// sequence: for the few writers that need it (the audit checkpointer) or
// that have no Publisher (the command line). A message whose subject
// already holds one (or whose id was seen in the duplicate window) gives a
// fault.Exists error: it was stored before.
func Publish(ctx context.Context, js jetstream.JetStream, m Message) (uint64, error) {
	ack, err := js.PublishMsg(ctx, m.nats())
	if err != nil {
		return 0, classify("publish "+m.Subject, err)
	}
	if ack.Duplicate {
		return ack.Sequence, fault.Errorf("publish "+m.Subject, fault.Exists, "duplicate message id %s", m.ID)
	}
	return ack.Sequence, nil
}

// Publisher stores messages and returns one outcome per message: nil when
// stored, fault.Exists when stored before. Messages on one stream are
// stored in the order given. The relay's services share one: the
// GroupCommit; Direct stores without gathering.
type Publisher interface {
	PublishAll(ctx context.Context, ms []Message) []error
}

// Store stores ms through p and returns the first failure (see Failed).
func Store(ctx context.Context, p Publisher, ms ...Message) error {
	return FirstError(p.PublishAll(ctx, ms))
}

// Direct is a Publisher that stores each call's messages by themselves.
// Messages bound for one stream that allows it are committed as atomic
// batches: with sync_interval always the server then fsyncs once per batch
// instead of once per message. An atomic batch costs the single-node server
// a few milliseconds of its own (it stages the batch on disk), so small
// groups go pipelined: measured here, 4,400 pipelined 2 KB publishes per
// second against 1,900 in batches of 10, 7,700 in batches of 50 and 14,000
// in batches of 100. A batch the server refuses as a whole (one of its
// messages exists already, after a retry) is published again message by
// message, pipelined, so that each message gets its own answer.
type Direct struct{ JS jetstream.JetStream }

// PublishAll stores ms, each stream's share concurrently.
func (d Direct) PublishAll(ctx context.Context, ms []Message) []error {
	return byStream(ms, func(name string, idx []int, errs []error) { store(ctx, d.JS, ms, idx, errs) })
}

// byStream hands each stream's share of ms (their indexes) to write, the
// streams concurrently, and returns the outcomes write set.
func byStream(ms []Message, write func(stream string, idx []int, errs []error)) []error {
	errs := make([]error, len(ms))
	groups := map[string][]int{}
	var order []string
	for i, m := range ms {
		name := atomicStreamOf(m.Subject)
		if _, ok := groups[name]; !ok {
			order = append(order, name)
		}
		groups[name] = append(groups[name], i)
	}
	var wg sync.WaitGroup
	for _, name := range order {
		wg.Go(func() { write(name, groups[name], errs) })
	}
	wg.Wait()
	return errs
}

// store writes ms[idx...] to one stream: as atomic batches when there are
// enough of them and the stream takes them, pipelined otherwise or when
// the server refuses a batch.
func store(ctx context.Context, js jetstream.JetStream, ms []Message, idx []int, errs []error) {
	if len(idx) >= minAtomicBatch && atomicStreamOf(ms[idx[0]].Subject) != "" {
		for start := 0; start < len(idx); start += maxAtomicBatch {
			chunk := idx[start:min(start+maxAtomicBatch, len(idx))]
			if len(chunk) >= minAtomicBatch && publishAtomic(ctx, js, ms, chunk) == nil {
				continue
			}
			publishPipelined(ctx, js, ms, chunk, errs)
		}
		return
	}
	publishPipelined(ctx, js, ms, idx, errs)
}

// Atomic batch sizes: below minAtomicBatch pipelining is faster (an atomic
// batch costs the single-node server several fsyncs of its own); the
// maximum stays below the server's default limit of 1,000 messages.
const (
	minAtomicBatch = 24
	maxAtomicBatch = 500
)

// GroupCommit is the Publisher of the relay's services: it gathers what
// concurrent callers (every service of the process) send to one stream and
// stores it together: while one batch is being fsynced, the next gathers.
// Each caller still gets the outcome of each of its own messages. One
// committer per stream also bounds the atomic batches in flight, each of
// which the single-node server stages in a store with its own block buffer.
type GroupCommit struct {
	js      jetstream.JetStream
	streams map[string]*committer
	stop    chan struct{}
	wg      sync.WaitGroup
}

// NewGroupCommit starts a committer for each stream that takes atomic
// batches. A caller waits for the outcome of its messages until its context
// ends (an HTTP request's http.store_timeout: fault.Unavailable). One flush
// lasts at most as long as the last of its callers waits, and at most
// timeout: a flush whose callers have all given up must not hold the
// stream's next callers (a publish in flight when a stream leader dies is
// never answered). Close stops the committers.
func NewGroupCommit(js jetstream.JetStream, timeout time.Duration) *GroupCommit {
	g := &GroupCommit{js: js, streams: map[string]*committer{}, stop: make(chan struct{})}
	for _, name := range []string{Notices, Events, Deliveries, "KV_" + StatusBucket} {
		c := &committer{js: js, queue: make(chan *commitRequest, 1024), linger: backgroundLinger, timeout: timeout}
		if name == Notices {
			c.linger = 0 // a platform waits for this one
		}
		g.streams[name] = c
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			c.run(g.stop)
		}()
	}
	return g
}

// Close stops the committers once the requests already queued are stored.
func (g *GroupCommit) Close() {
	close(g.stop)
	g.wg.Wait()
}

// PublishAll stores ms together with what other callers send to the same
// streams, and waits for the outcome of each (see Direct for how).
func (g *GroupCommit) PublishAll(ctx context.Context, ms []Message) []error {
	return byStream(ms, func(name string, idx []int, errs []error) {
		if c := g.streams[name]; c != nil {
			c.commit(ctx, ms, idx, errs)
			return
		}
		store(ctx, g.js, ms, idx, errs)
	})
}

type committer struct {
	js    jetstream.JetStream
	queue chan *commitRequest
	// linger is how long a flush waits for more once it has something:
	// every flush costs fsyncs that the latency-critical notice stream's
	// flushes queue behind on the disk, so the streams written in the
	// background commit in fewer, larger batches.
	linger time.Duration
	// timeout bounds one flush (also one whose callers have no deadline).
	timeout time.Duration
}

// FlushTimeout bounds one group commit: a dead connection fails its
// callers rather than hang them. It is what a stage's writes wait at most
// (their callers have no deadline): a publish in flight to a stream leader
// that is lost is never answered, and every write to that stream queues
// behind it, so the status projection (and whatever else writes there)
// stalled for this long after a leader change, 30 s before. Flushes take
// milliseconds (docs/performance.md); a stage's batch that times out is
// delivered again and stored with the same ids. As http.store_timeout's
// default.
const FlushTimeout = 5 * time.Second

// backgroundLinger is the linger of the streams no caller waits on directly.
const backgroundLinger = 10 * time.Millisecond

type commitRequest struct {
	// deadline is when the caller stops waiting (zero: it waits for the
	// flush).
	deadline time.Time
	ms       []Message
	idx      []int
	errs     []error // the outcome of ms[idx[j]] in errs[j], owned by the committer
	done     chan struct{}
}

// commit hands ms[idx...] to the committer and waits for their outcome, at
// most until ctx ends: a caller that stops waiting learns nothing of
// whether its messages were stored, which a retry with the same ids
// settles. The flush that takes them ends within the committer's timeout.
func (c *committer) commit(ctx context.Context, ms []Message, idx []int, errs []error) {
	r := &commitRequest{ms: ms, idx: idx, errs: make([]error, len(idx)), done: make(chan struct{})}
	r.deadline, _ = ctx.Deadline()
	giveUp := func(err error) {
		for _, i := range idx {
			errs[i] = fault.E("publish "+ms[i].Subject, fault.Unavailable, err)
		}
	}
	select {
	case c.queue <- r:
	case <-ctx.Done():
		giveUp(ctx.Err())
		return
	}
	select {
	case <-r.done:
		for j, i := range idx {
			errs[i] = r.errs[j]
		}
	case <-ctx.Done():
		giveUp(ctx.Err())
	}
}

// run stores gathered requests until stop, then what is still queued.
func (c *committer) run(stop <-chan struct{}) {
	var batch []*commitRequest
	for {
		var first *commitRequest
		select {
		case first = <-c.queue:
		case <-stop:
			for {
				select {
				case r := <-c.queue:
					c.flush([]*commitRequest{r})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		n := len(first.idx)
		var deadline <-chan time.Time
		var timer *time.Timer
		if c.linger > 0 {
			timer = time.NewTimer(c.linger)
			deadline = timer.C
		}
	gather:
		for n < maxAtomicBatch {
			var r *commitRequest
			if deadline == nil { // take only what is waiting
				select {
				case r = <-c.queue:
				default:
					break gather
				}
			} else { // wait for more until the deadline
				select {
				case r = <-c.queue:
				case <-deadline:
					break gather
				}
			}
			batch = append(batch, r)
			n += len(r.idx)
		}
		if timer != nil {
			timer.Stop()
		}
		c.flush(batch)
	}
}

// flush stores the messages of several requests as one group (see store)
// and gives each request the outcome of each of its messages.
func (c *committer) flush(batch []*commitRequest) {
	var all []Message
	for _, r := range batch {
		for _, i := range r.idx {
			all = append(all, r.ms[i])
		}
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	errs := make([]error, len(all))
	// Not the callers' contexts: the group is theirs together. It lasts as
	// long as the last of them waits, within the committer's bound, so a
	// dead connection or a dead stream leader fails the callers rather than
	// hang them, and holds the next callers no longer than anyone waits.
	ctx, cancel := context.WithDeadline(context.Background(), flushDeadline(batch, time.Now().Add(c.timeout)))
	defer cancel()
	store(ctx, c.js, all, idx, errs)
	k := 0
	for _, r := range batch {
		for j := range r.idx {
			r.errs[j] = errs[k]
			k++
		}
		close(r.done)
	}
}

// flushDeadline is the latest deadline of the requests of batch, and at
// most limit (a request without a deadline waits until limit).
func flushDeadline(batch []*commitRequest, limit time.Time) time.Time {
	var last time.Time
	for _, r := range batch {
		if r.deadline.IsZero() || r.deadline.After(limit) {
			return limit
		}
		if r.deadline.After(last) {
			last = r.deadline
		}
	}
	return last
}

// publishAtomic commits ms[idx...] as one atomic batch.
func publishAtomic(ctx context.Context, js jetstream.JetStream, ms []Message, idx []int) error {
	batch := make([]*nats.Msg, len(idx))
	for j, i := range idx {
		batch[j] = ms[i].nats()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// No ack of the first message: the whole batch goes in one round trip
	// (a refused batch is published again message by message anyway).
	_, err := jetstreamext.PublishMsgBatch(ctx, js, batch, jetstreamext.BatchFlowControl{AckFirst: false})
	return err
}

// publishPipelined sends every message before awaiting any answer.
func publishPipelined(ctx context.Context, js jetstream.JetStream, ms []Message, idx []int, errs []error) {
	futures := make([]jetstream.PubAckFuture, len(idx))
	for j, i := range idx {
		f, err := js.PublishMsgAsync(ms[i].nats())
		if err != nil {
			errs[i] = classify("publish "+ms[i].Subject, err)
			continue
		}
		futures[j] = f
	}
	for j, f := range futures {
		if f == nil {
			continue
		}
		i := idx[j]
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				errs[i] = fault.Errorf("publish "+ms[i].Subject, fault.Exists, "duplicate message id %s", ms[i].ID)
			}
		case err := <-f.Err():
			errs[i] = classify("publish "+ms[i].Subject, err)
		case <-ctx.Done():
			errs[i] = fault.E("publish "+ms[i].Subject, fault.Unavailable, ctx.Err())
		}
	}
}

// Failed says whether a publish failed: an error other than fault.Exists
// (stored before, which is what a retry wants).
func Failed(err error) bool { return err != nil && !fault.Is(err, fault.Exists) }

// FirstError returns the first error in errs that Failed.
func FirstError(errs []error) error {
	for _, err := range errs {
		if Failed(err) {
			return err
		}
	}
	return nil
}

// fullLimits are the limits of a full stream: JSStreamStoreFailedF (10077)
// names in its description which one was reached.
var fullLimits = []error{server.ErrMaxBytes, server.ErrMaxMsgs}

// Classify gives a JetStream or NATS error its fault kind, for callers that
// use the JetStream API directly; nil stays nil.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	return classify(op, err)
}

// classify gives a JetStream or NATS error its fault kind, by its JetStream
// error code (the server's own names for them).
func classify(op string, err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch code := server.ErrorIdentifier(api.ErrorCode); {
		case code == server.JSStreamStoreFailedF && strings.Contains(api.Description, server.ErrMaxMsgsPerSubject.Error()),
			code == server.JSAtomicPublishContainsDuplicateMessageErr:
			return fault.E(op, fault.Exists, err)
		case code == server.JSStreamStoreFailedF && slices.ContainsFunc(fullLimits, func(l error) bool {
			return strings.Contains(api.Description, l.Error())
		}),
			code == server.JSInsufficientResourcesErr, code == server.JSStorageResourcesExceededErr,
			code == server.JSMemoryResourcesExceededErr:
			return fault.E(op, fault.Full, err)
		case code == server.JSStreamDuplicateMessageConflict:
			// Another publish with this id is in flight (a concurrent
			// retry); its outcome is not known yet: try again.
			return fault.E(op, fault.Unavailable, err)
		case code == server.JSStreamWrongLastSequenceErrF, code == server.JSStreamWrongLastSequenceConstantErr:
			// A conditional write lost a race: 10071 on a single node,
			// 10164 on a replicated stream.
			return fault.E(op, fault.Conflict, err)
		case code == server.JSNoMessageFoundErr:
			return fault.E(op, fault.NotFound, err)
		case api.Code == 503:
			return fault.E(op, fault.Unavailable, err)
		}
		return fault.E(op, fault.Internal, err)
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fault.E(op, fault.TooLarge, err)
	case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrKeyNotFound):
		return fault.E(op, fault.NotFound, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrTooManyStalledMsgs), errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fault.E(op, fault.Unavailable, err)
	}
	return fault.E(op, fault.Internal, err)
}

// Get returns the one message stored on subject in stream (direct get).
// A subject with no message gives fault.NotFound.
func Get(ctx context.Context, s jetstream.Stream, subject string) (*jetstream.RawStreamMsg, error) {
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, classify("get "+subject, err)
	}
	if m.Header.Get(MarkerHeader) != "" {
		// What was there has expired; only its marker is left.
		return nil, fault.Errorf("get "+subject, fault.NotFound, "expired")
	}
	return m, nil
}

// Reader reads the one message stored on a subject (fault.NotFound when
// there is none): the reads a stage makes, which its tests answer from a
// map.
type Reader interface {
	Read(ctx context.Context, subject string) ([]byte, error)
}

// Streams is the Reader of the relay's streams: each subject is read from
// the stream it belongs to.
type Streams map[string]jetstream.Stream

// OpenStreams returns the Reader of the streams named, reading each as
// ReadYourWrites does: a stage must not take a replica's lag for a
// message that is not there.
func OpenStreams(ctx context.Context, js jetstream.JetStream, names ...string) (Streams, error) {
	s := Streams{}
	for _, name := range names {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return nil, classify("stream "+name, err)
		}
		s[name] = ReadYourWrites(st, js)
	}
	return s, nil
}

// Read returns the data of the message stored on subject.
func (s Streams) Read(ctx context.Context, subject string) ([]byte, error) {
	st := s[atomicStreamOf(subject)]
	if st == nil {
		return nil, fault.Errorf("read "+subject, fault.Internal, "no stream opened for this subject")
	}
	m, err := Get(ctx, st, subject)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
