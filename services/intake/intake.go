// Package intake is the platforms' entry point: it authenticates a
// submission, validates it, stores it durably and only then answers 202.
// Storing the notice body is the single commit point; everything else
// (events, routing, deliveries) follows from the stored body.
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/share"
	"github.com/noticerelay/noticerelay/pkg/stored"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = "intake"

// Service is the intake service.
type Service struct {
	env     *module.Env
	notices jetstream.Stream
	// stored answers whose a notice is (the body, or its accepted event).
	lookup stored.Notices
	events jetstream.Stream
	// leader reads the notice stream through its leader (Service.stored).
	leader   nats.JetStreamContext
	states   country.Set // the Member States served, for warnings
	inFlight chan struct{}
	rejected *rejections
	// largeBodies are the turns of bodies over 64 KiB: read and parsed
	// one at a time per platform (at its large_body_rate), two in all.
	largeBodies *httpapi.Turns
	answers     *prometheus.CounterVec
	latency     prometheus.Histogram
}

// New returns the intake service.
func New(env *module.Env) *Service {
	states, _ := country.MemberStates(env.Config.MemberStates)
	s := &Service{
		env:         env,
		states:      states,
		inFlight:    make(chan struct{}, env.Config.Limits.MaxInFlight),
		rejected:    newRejections(env),
		largeBodies: httpapi.NewTurns(2, env.Config.Limits.PerCaller.LargeBodyRate),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_intake_answers_total",
			Help: "Answers to notice submissions, by HTTP status.",
		}, []string{"status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "noticerelay_intake_accept_seconds",
			Help:    "Time from request to 202, including the durable store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	env.Metrics.MustRegister(s.answers, s.latency)
	return s
}

// Start registers the routes.
func (s *Service) Start(ctx context.Context) error {
	var err error
	if s.notices, err = s.env.Stream(ctx, stream.Notices); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	if s.events, err = s.env.Stream(ctx, stream.Events); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	s.lookup = stored.Notices{Notices: s.notices, Events: s.events, Pseudonyms: s.env.Pseudonyms}
	if s.leader, err = s.env.JS.Conn().JetStream(); err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	s.env.Mux.HandleFunc("POST /v1/notices", s.submit)
	s.env.Mux.HandleFunc("POST /v1/notices/{id}/withdraw", s.withdraw)
	go s.rejected.run(ctx)
	return nil
}

// Wait returns once the last rejections are recorded.
func (s *Service) Wait() { <-s.rejected.done }

// Accepted is the answer to a stored submission.
type Accepted struct {
	ID         string `json:"id"`
	Reference  string `json:"reference"`
	Status     string `json:"status"`
	ReceivedAt string `json:"received_at"`
	// Warnings say what is valid but makes the notice hard to act on.
	Warnings []notice.Warning `json:"warnings,omitempty"`
}

func (s *Service) submit(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, ok := s.env.Auth.FromRequest(r, auth.Platform)
	if !ok {
		s.count(http.StatusUnauthorized)
		httpapi.Unauthorized(w)
		return
	}
	// The body first, under its own deadline, before any slot or share is
	// taken: a slow sender holds nothing the others need.
	body, release, prob := httpapi.ReadBody(w, r, notice.MaxBodyBytes, time.Duration(s.env.Config.HTTP.BodyTimeout), s.largeBodies, p.ID)
	defer release()
	if prob != nil {
		switch prob.Status {
		case http.StatusRequestEntityTooLarge:
			s.rejected.add(p.ID, "body_too_large")
		case http.StatusRequestTimeout:
			s.rejected.add(p.ID, "body_timeout")
		case http.StatusTooManyRequests:
			s.rejected.add(p.ID, "over_share")
		}
		s.count(prob.Status)
		httpapi.WriteProblem(w, *prob)
		return
	}
	checked := notice.Check(body, notice.Options{Now: s.env.Now(), MemberStates: s.states})
	release()
	n, problems := checked.Notice, checked.Errors
	// An urgent notice has a share of its own: the platform's normal
	// traffic, valid or not, never refuses it.
	class := share.Normal
	if n != nil && n.ImminentThreat {
		class = share.Urgent
	}
	done, retry, ok := s.env.Shares.Take(p.ID, class)
	if !ok {
		s.rejected.add(p.ID, "over_share")
		s.count(http.StatusTooManyRequests)
		share.TooMany(w, retry)
		return
	}
	defer done()
	if len(problems) > 0 {
		s.refuse(w, p.ID, problems)
		return
	}
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		s.count(http.StatusServiceUnavailable)
		httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusServiceUnavailable,
			Detail: "too many submissions in flight; retry after the time in Retry-After"})
		return
	}
	canonical, sum := notice.Canonical(n)
	rec := notice.Record{
		V:          notice.RecordVersion,
		ID:         notice.ID(p.ID, n.Reference),
		Platform:   p.ID,
		Reference:  n.Reference,
		ReceivedAt: module.Timestamp(s.env.Now()),
		BodySHA256: sum,
		Notice:     canonical,
	}
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	problems, err := s.resolve(ctx, n, &rec)
	if len(problems) > 0 {
		s.refuse(w, p.ID, problems)
		return
	}
	var ans *Accepted
	var status int
	if err == nil {
		ans, status, err = s.store(ctx, &rec)
	}
	if err != nil {
		if fault.Is(err, fault.Conflict) {
			s.rejected.add(p.ID, "reference_conflict")
		}
		s.count(fault.HTTPStatus(err))
		httpapi.Error(w, s.env.Log, err)
		return
	}
	s.count(status)
	if status == http.StatusAccepted {
		s.latency.Observe(time.Since(start).Seconds())
	}
	ans.Warnings = checked.Warnings
	httpapi.JSON(w, status, ans)
}

// refuse answers 400 with every problem and records the rejection.
func (s *Service) refuse(w http.ResponseWriter, platform string, problems []notice.FieldError) {
	s.rejected.add(platform, reasonCodes(problems)...)
	s.count(http.StatusBadRequest)
	errs := make([]httpapi.FieldError, len(problems))
	for i, fe := range problems {
		errs[i] = httpapi.FieldError{Field: fe.Field, Message: fe.Message}
	}
	httpapi.BadRequest(w, fmt.Sprintf("the notice has %d problem(s)", len(errs)), errs...)
}

// resolve finds the earlier notices that n's follow_up_of and supersedes
// name and records their ids in rec. Notice ids are a function of
// (platform, reference), so a reference resolves only to a notice of the
// same platform, the same one on every retry. A reference the platform
// never submitted is a problem; one whose notice has expired is known still
// (its subject keeps a marker).
func (s *Service) resolve(ctx context.Context, n *notice.Notice, rec *notice.Record) ([]notice.FieldError, error) {
	var problems []notice.FieldError
	for _, link := range []struct {
		field, ref string
		id         *string
	}{{"follow_up_of", n.FollowUpOf, &rec.FollowUpOfID}, {"supersedes", n.Supersedes, &rec.SupersedesID}} {
		if link.ref == "" {
			continue
		}
		id := notice.ID(rec.Platform, link.ref)
		known, err := s.stored(ctx, id)
		if err != nil {
			return nil, err
		}
		if !known {
			problems = append(problems, notice.FieldError{Field: link.field, Code: notice.CodeInvalid, Rule: link.field,
				Message: fmt.Sprintf("no notice of this platform has reference %q", link.ref)})
			continue
		}
		*link.id = id
	}
	return problems, nil
}

// stored reports whether notice id was ever stored: its body, or the
// marker its body left when it expired. It asks the stream's leader: a
// replica that answers direct gets may not have the notice the platform was
// answered 202 for a moment ago (legacy JetStreamContext reads through the
// leader unless told otherwise).
func (s *Service) stored(ctx context.Context, id string) (bool, error) {
	_, err := s.leader.GetLastMsg(stream.Notices, stream.NoticeSubject(id), nats.Context(ctx))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, nats.ErrMsgNotFound):
		return false, nil
	case ctx.Err() != nil:
		return false, fault.E("intake: looking up an earlier notice", fault.Unavailable, ctx.Err())
	default:
		return false, fault.E("intake: looking up an earlier notice", fault.Unavailable, err)
	}
}

// store makes rec durable, unless (platform, reference) was stored before:
// then the same body answers 200 with the first answer, another body 409.
func (s *Service) store(ctx context.Context, rec *notice.Record) (*Accepted, int, error) {
	// No read first: a new notice is stored at once (concurrent ones meet
	// in the notice stream's committer). Its subject is its id, taken for
	// good (by the body, then by the marker it leaves when it expires), so a
	// second submission of (platform, reference) is refused by the stream
	// whenever it comes, and only then is anything read.
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, 0, fault.E("intake: encoding record", fault.Internal, err)
	}
	err = s.env.Publisher.PublishAll(ctx, []stream.Message{
		{Subject: stream.NoticeSubject(rec.ID), ID: rec.ID, Data: body, Header: s.retentionTTL()}})[0]
	if fault.Is(err, fault.Exists) {
		prev, err := s.lookup.Record(ctx, rec.ID)
		if err == nil && prev == nil {
			// A concurrent submission's write is not readable yet.
			err = fault.Errorf("intake", fault.Unavailable, "a submission of reference %q is being stored right now", rec.Reference)
		}
		return s.same(prev, rec, err)
	}
	if err != nil {
		return nil, 0, err
	}
	return &Accepted{ID: rec.ID, Reference: rec.Reference, Status: "accepted", ReceivedAt: rec.ReceivedAt}, http.StatusAccepted, nil
}

// retentionTTL makes a message of personal data expire after the retention.
func (s *Service) retentionTTL() nats.Header {
	h := nats.Header{}
	h.Set(jetstream.MsgTTLHeader, strconv.FormatInt(int64(time.Duration(s.env.Config.Retention.Notices).Seconds()), 10))
	return h
}

func (s *Service) same(prev, rec *notice.Record, err error) (*Accepted, int, error) {
	if err != nil {
		return nil, 0, err
	}
	if prev.BodySHA256 != rec.BodySHA256 {
		return nil, 0, fault.Errorf("intake", fault.Conflict,
			"reference %q was already used for notice %s with a different body", rec.Reference, prev.ID)
	}
	return &Accepted{ID: prev.ID, Reference: rec.Reference, Status: "accepted", ReceivedAt: prev.ReceivedAt}, http.StatusOK, nil
}

func (s *Service) count(status int) { s.answers.WithLabelValues(fmt.Sprint(status)).Inc() }

// reasonCodes turns field errors into reason codes that hold no submitted
// value: "invalid:victims[].country" for a field of the notice (its path in
// notice.Fields), "unknown_or_duplicate_field" for a key the notice lacks
// or repeats (its name is the platform's text), "malformed" for a body that
// is not a notice at all.
func reasonCodes(errs []notice.FieldError) []string {
	seen := map[string]bool{}
	var out []string
	for _, fe := range errs {
		code := "malformed"
		switch fe.Code {
		case notice.CodeUnknownField, notice.CodeDuplicateField:
			code = "unknown_or_duplicate_field"
		case notice.CodeInvalid:
			code = "invalid:" + fe.Rule
		}
		if !seen[code] {
			seen[code] = true
			out = append(out, code)
		}
	}
	return out
}

// WithdrawRequest is the body of a withdrawal.
type WithdrawRequest struct {
	Reason string `json:"reason"`
}

const maxReason = 3000

func (s *Service) withdraw(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	var req WithdrawRequest
	p, release, ok := s.env.Admit(w, r, auth.Platform, func() bool {
		if !notice.ValidID(id) {
			httpapi.NotFound(w, "notice")
			return false
		}
		return httpapi.DecodeBody(w, r, &req, httpapi.LargeBody, time.Duration(s.env.Config.HTTP.BodyTimeout), `a JSON object {"reason": "..."}`)
	})
	if !ok {
		return
	}
	defer release()
	n := utf8.RuneCountInString(req.Reason)
	if strings.TrimSpace(req.Reason) == "" || n > maxReason {
		httpapi.BadRequest(w, "invalid withdrawal", httpapi.FieldError{Field: "reason",
			Message: fmt.Sprintf("is required: 1 to %d characters", maxReason)})
		return
	}
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	prev, err := s.lookup.Record(ctx, id)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if prev == nil || prev.Platform != p.ID {
		httpapi.NotFound(w, "notice")
		return
	}
	wd := notice.Withdrawal{V: notice.RecordVersion, NoticeID: id, Platform: p.ID, Reference: prev.Reference,
		Reason: req.Reason, RequestedAt: module.Timestamp(s.env.Now())}
	data, err := json.Marshal(wd)
	if err != nil {
		httpapi.Error(w, s.env.Log, fault.E("intake: encoding withdrawal", fault.Internal, err))
		return
	}
	err = stream.Store(ctx, s.env.Publisher, stream.Message{Subject: stream.WithdrawSubject(id), ID: "withdraw-" + id,
		Data: data, Header: s.retentionTTL()})
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	httpapi.JSON(w, http.StatusAccepted, map[string]string{"id": id, "status": "withdrawn"})
}
