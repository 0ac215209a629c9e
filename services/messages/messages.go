// Package messages is the conversation between an authority and the
// platform about a notice (contract section 8). Both sides POST messages
// here; each is stored in NR_MESSAGES before the 201, and routing turns
// it into a delivery for its recipient (an authority's queue, or a
// platform's notify queue). Each authority has its own thread with the
// platform; the platform reads all of them.
package messages

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/message"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stored"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = message.Service

// maxBody bounds a message request: 10,000 characters, each up to 12
// bytes as a JSON escape of a surrogate pair, plus the other fields.
const maxBody = 128 << 10

// IdempotencyHeader names a retried POST: the same key from the same
// sender about the same notice names the same message, stored once.
const IdempotencyHeader = "Idempotency-Key"

// Service is the messages service.
type Service struct {
	env        *module.Env
	deliveries jetstream.Stream
	events     jetstream.Stream
	notices    jetstream.Stream
	lookup     stored.Notices
	messages   jetstream.Stream
	sent       *prometheus.CounterVec
}

// New returns the messages service.
func New(env *module.Env) *Service {
	s := &Service{env: env, sent: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "noticerelay_messages_sent_total",
		Help: "Messages stored, by sender (authority or platform) and kind.",
	}, []string{"sender", "kind"})}
	env.Metrics.MustRegister(s.sent)
	return s
}

// Start registers the routes.
func (s *Service) Start(ctx context.Context) error {
	for name, st := range map[string]*jetstream.Stream{stream.Deliveries: &s.deliveries, stream.Events: &s.events,
		stream.Notices: &s.notices, stream.Messages: &s.messages} {
		var err error
		if *st, err = s.env.Stream(ctx, name); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
	}
	s.lookup = stored.Notices{Notices: s.notices, Events: s.events, Pseudonyms: s.env.Pseudonyms}
	s.env.Mux.HandleFunc("POST /v1/inbox/{id}/messages", s.fromAuthority)
	s.env.Mux.HandleFunc("GET /v1/notices/{id}/messages", s.list)
	s.env.Mux.HandleFunc("POST /v1/notices/{id}/messages", s.fromPlatform)
	return nil
}

// Wait returns at once: the service works only inside requests.
func (s *Service) Wait() {}

// Thread is the answer to GET /v1/notices/{id}/messages.
type Thread struct {
	Messages []message.Message `json:"messages"`
}

// request is a message request's body.
type request interface {
	Check() []httpapi.FieldError
}

// read authenticates the caller as role, reads its message into req
// (strictly, under its own deadline) and takes the caller's share,
// answering and returning false when it cannot: the caller, the path's id
// (lower case), the Idempotency-Key ("" without one) and the function that
// gives the share back when the request ends.
func (s *Service) read(w http.ResponseWriter, r *http.Request, role auth.Role, req request) (auth.Principal, string, string, func(), bool) {
	p, release, ok := s.env.Admit(w, r, role, func() bool {
		return httpapi.DecodeBody(w, r, req, maxBody, time.Duration(s.env.Config.HTTP.BodyTimeout), "one JSON object of the listed fields")
	})
	if !ok {
		return p, "", "", nil, false
	}
	key, errs := idempotencyKey(r)
	if errs = append(req.Check(), errs...); len(errs) > 0 {
		release()
		httpapi.BadRequest(w, "invalid message", errs...)
		return p, "", "", nil, false
	}
	return p, strings.ToLower(r.PathValue("id")), key, release, true
}

func (s *Service) fromAuthority(w http.ResponseWriter, r *http.Request) {
	var req message.AuthorityRequest
	p, id, key, release, ok := s.read(w, r, auth.Authority, &req)
	if !ok {
		return
	}
	defer release()
	if !notice.ValidID(id) {
		httpapi.NotFound(w, "delivery")
		return
	}
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	// Only about a notice it received: the delivery must be its own.
	d, err := delivery.Find(ctx, s.deliveries, p.ID, id)
	if fault.Is(err, fault.NotFound) {
		httpapi.NotFound(w, "delivery")
		return
	}
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	rec := &message.Record{V: message.Version, ID: messageID(d.NoticeID, p.ID, key), NoticeID: d.NoticeID,
		Platform: d.Platform, Authority: p.ID, From: p.ID, To: message.Platform, Kind: req.Kind, Text: req.Text,
		InReplyTo: req.InReplyTo, SentAt: module.Timestamp(s.env.Now()), Priority: d.Priority}
	s.store(ctx, w, rec)
}

func (s *Service) fromPlatform(w http.ResponseWriter, r *http.Request) {
	var req message.PlatformRequest
	p, id, key, release, ok := s.read(w, r, auth.Platform, &req)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	if !s.owned(ctx, w, p.ID, id) {
		return
	}
	ps := s.env.Pseudonyms.Notice(id)
	withdrawn, err := s.lookup.Withdrawn(ctx, id)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if withdrawn {
		httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusConflict, Title: "notice withdrawn",
			Detail: "the notice was withdrawn: it takes no new messages"})
		return
	}
	q, err := s.received(ctx, ps, req.To)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	if q == nil {
		httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusConflict, Title: "not a recipient",
			Detail: fmt.Sprintf("authority %q did not receive this notice", req.To)})
		return
	}
	rec := &message.Record{V: message.Version, ID: messageID(id, message.Platform, key), NoticeID: id,
		Platform: p.ID, Authority: req.To, From: message.Platform, To: req.To, Kind: message.KindResponse,
		Text: req.Text, InReplyTo: req.InReplyTo, SentAt: module.Timestamp(s.env.Now()), Priority: q.Priority}
	s.store(ctx, w, rec)
}

// store checks rec's in_reply_to, stores it and answers 201. A message
// stored before under the same id (a retry with the same Idempotency-Key)
// answers as the first time if it says the same, 409 otherwise.
func (s *Service) store(ctx context.Context, w http.ResponseWriter, rec *message.Record) {
	if rec.InReplyTo != "" {
		_, err := stream.Get(ctx, s.messages, stream.MessageSubject(rec.NoticeID, rec.Authority, rec.InReplyTo))
		if fault.Is(err, fault.NotFound) {
			httpapi.BadRequest(w, "invalid message", httpapi.FieldError{Field: "in_reply_to",
				Message: "no message with this id in this thread"})
			return
		}
		if err != nil {
			httpapi.Error(w, s.env.Log, err)
			return
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		httpapi.Error(w, s.env.Log, fault.E("messages: encoding", fault.Internal, err))
		return
	}
	subject := stream.MessageSubject(rec.NoticeID, rec.Authority, rec.ID)
	err = s.env.Publisher.PublishAll(ctx, []stream.Message{{Subject: subject, ID: rec.ID, Data: data}})[0]
	if fault.Is(err, fault.Exists) {
		var m *jetstream.RawStreamMsg
		if m, err = stream.Get(ctx, s.messages, subject); err == nil {
			prev, derr := message.Decode(m.Data)
			switch {
			case derr != nil:
				err = fault.E("messages", fault.Internal, derr)
			case !prev.Same(rec):
				httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusConflict, Title: "idempotency key reused",
					Detail: "this Idempotency-Key already sent a different message"})
				return
			default:
				httpapi.JSON(w, http.StatusCreated, message.Sent{ID: prev.ID, SentAt: prev.SentAt})
				return
			}
		}
	}
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	s.sent.WithLabelValues(sender(rec), rec.Kind).Inc()
	httpapi.JSON(w, http.StatusCreated, message.Sent{ID: rec.ID, SentAt: rec.SentAt})
}

func sender(rec *message.Record) string {
	if rec.From == message.Platform {
		return "platform"
	}
	return "authority"
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	p, release, ok := s.env.Admit(w, r, auth.Platform, nil)
	if !ok {
		return
	}
	defer release()
	id := strings.ToLower(r.PathValue("id"))
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	if !s.owned(ctx, w, p.ID, id) {
		return
	}
	recs, err := s.thread(ctx, id)
	if err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	// Handed to the platform: each message to it is delivered now, unless
	// its notify URL or an earlier listing had it first (the event exists
	// once, the first one stays).
	var events []stream.Message
	out := make([]message.Message, len(recs))
	for i, rec := range recs {
		out[i] = rec.Out()
		if rec.ToPlatform() {
			ev := rec.Event(s.env.Pseudonyms, event.MessageDelivered, s.env.Now())
			m, err := ev.Message()
			if err != nil {
				httpapi.Error(w, s.env.Log, fault.E("messages", fault.Internal, err))
				return
			}
			events = append(events, m)
		}
	}
	if err := stream.Store(ctx, s.env.Publisher, events...); err != nil {
		httpapi.Error(w, s.env.Log, err)
		return
	}
	httpapi.JSON(w, http.StatusOK, Thread{Messages: out})
}

// thread reads every message about notice id, oldest first.
func (s *Service) thread(ctx context.Context, id string) ([]*message.Record, error) {
	var recs []*message.Record
	filter := stream.MessageFilter(id)
	for seq := uint64(1); ; {
		m, err := s.messages.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if err != nil {
			if err = stream.Classify("messages: reading "+filter, err); fault.Is(err, fault.NotFound) {
				break
			}
			return nil, err
		}
		rec, err := message.Decode(m.Data)
		if err != nil {
			return nil, fault.E("messages", fault.Internal, err)
		}
		recs = append(recs, rec)
		seq = m.Sequence + 1
	}
	slices.SortStableFunc(recs, func(a, b *message.Record) int { return strings.Compare(a.SentAt, b.SentAt) })
	return recs, nil
}

// owned answers 404 and returns false unless notice id is platform's.
func (s *Service) owned(ctx context.Context, w http.ResponseWriter, platform, id string) bool {
	owns, err := s.lookup.Owns(ctx, platform, id)
	switch {
	case err != nil:
		httpapi.Error(w, s.env.Log, err)
		return false
	case !owns:
		httpapi.NotFound(w, "notice")
		return false
	}
	return true
}

// received returns the queued event by which authority received the
// notice (as a recipient, or as an escalation target), or nil.
func (s *Service) received(ctx context.Context, pseudonym, authority string) (*event.Event, error) {
	if authority == message.Platform || !validPart(authority) {
		return nil, nil
	}
	for _, kind := range []string{event.KindNotice, event.KindEscalation} {
		m, err := stream.Get(ctx, s.events, event.SubjectOf(pseudonym, event.Queued, authority, kind))
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			return nil, fault.E("messages", fault.Internal, err)
		}
		return ev, nil
	}
	return nil, nil
}

// validPart reports whether s can be one token of a subject: an id as the
// configuration allows them, so that "to" can never reach another subject.
func validPart(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// messageID is the id of a new message: named by the Idempotency-Key when
// the caller gave one, so that a retry stores nothing twice; random
// otherwise.
func messageID(noticeID, sender, key string) string {
	if key == "" {
		return uuid.NewString()
	}
	return notice.MessageID(noticeID, sender, key)
}

// idempotencyKey returns the request's Idempotency-Key ("" without one).
func idempotencyKey(r *http.Request) (string, []httpapi.FieldError) {
	if _, ok := r.Header[IdempotencyHeader]; !ok {
		return "", nil
	}
	key := r.Header.Get(IdempotencyHeader)
	return key, message.CheckIdempotencyKey(key)
}
