// Package stagetest helps test a pipeline stage's function without a
// broker: an environment with a fixed clock, stored notices, and a Reader
// answered from a map.
package stagetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Platform is the platform of the test configuration.
const Platform = "examplenet"

// Authorities of the test configuration, by country.
var Authorities = map[string]string{"DE": "de-bka", "FR": "fr-police", "IE": "ie-garda", "EU": "europol"}

// Env returns an environment with the test configuration (changed by
// change, when given) whose clock reads *now.
func Env(t testing.TB, now *time.Time, change func(*config.Config)) *module.Env {
	t.Helper()
	c := &config.Config{MemberStates: "EU27"}
	c.Platforms = []config.Platform{{ID: Platform, Name: Platform, Tokens: []config.Token{config.Digest("platform-token-" + Platform)},
		Establishment: "IE", Fallback: []string{"establishment"}}}
	for _, cc := range []string{"DE", "EU", "FR", "IE"} {
		id := Authorities[cc]
		c.Authorities = append(c.Authorities, config.Authority{ID: id, Country: cc, Name: id,
			Tokens: []config.Token{config.Digest("authority-token-" + id)}})
	}
	if change != nil {
		change(c)
	}
	cfg, err := config.Normalize(c)
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	return &module.Env{Config: cfg, Log: zaptest.NewLogger(t), Metrics: prometheus.NewRegistry(),
		Pseudonyms: event.NewPseudonyms([]byte("stagetest pseudonym key, 32 byte")), Now: func() time.Time { return *now }}
}

// Record returns the stored record of a notice with reference ref, its
// offence in country offence and its suspect in suspect, urgent when
// imminent, received at.
func Record(t testing.TB, ref, offence, suspect string, imminent bool, at time.Time) (*notice.Record, []byte) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"reference": ref, "category": "human_trafficking", "exploitation": "sexual", "imminent_threat": imminent,
		"suspicion": "Account recruits for fake jobs abroad; see chat.", "occurred_at": "2026-11-20T14:03:00+01:00",
		"locations": []map[string]any{{"country": offence, "description": "meeting point"}},
		"suspects":  []map[string]any{{"country": suspect, "account_id": "u-991"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n, problems := notice.Parse(body)
	if len(problems) > 0 {
		t.Fatalf("test notice: %v", problems)
	}
	canonical, sum := notice.Canonical(n)
	rec := &notice.Record{V: notice.RecordVersion, ID: notice.ID(Platform, ref), Platform: Platform, Reference: ref,
		ReceivedAt: module.Timestamp(at), BodySHA256: sum, Notice: canonical}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return rec, data
}

// Store is a stream.Reader answered from what it holds, by subject: a
// subject it does not hold is fault.NotFound; a read of a subject in Errs
// fails with that error.
type Store struct {
	Msgs map[string][]byte
	Errs map[string]error
}

// NewStore returns a Store holding ms.
func NewStore(ms ...stream.Message) *Store {
	s := &Store{Msgs: map[string][]byte{}, Errs: map[string]error{}}
	s.Put(ms...)
	return s
}

// Put stores ms, each on its subject.
func (s *Store) Put(ms ...stream.Message) {
	for _, m := range ms {
		s.Msgs[m.Subject] = m.Data
	}
}

// Read returns the message stored on subject.
func (s *Store) Read(_ context.Context, subject string) ([]byte, error) {
	if err := s.Errs[subject]; err != nil {
		return nil, err
	}
	if d, ok := s.Msgs[subject]; ok {
		return d, nil
	}
	return nil, fault.Errorf("read "+subject, fault.NotFound, "nothing stored")
}

// Log is a stream answered from what it holds, in the order stored, the
// first at sequence 1: the reads a stage makes through a stream's leader
// (Last and Next, as stream.LeaderReader) and, as a stream.Publisher, the
// writes it makes itself. A read of a subject (Last) or filter (Next) in
// Errs fails with that error.
type Log struct {
	Msgs []*jetstream.RawStreamMsg
	Errs map[string]error
	ids  map[string]bool
}

// NewLog returns a Log holding ms.
func NewLog(ms ...stream.Message) *Log {
	l := &Log{Errs: map[string]error{}, ids: map[string]bool{}}
	l.Put(ms...)
	return l
}

// Put stores ms at the next sequences.
func (l *Log) Put(ms ...stream.Message) {
	for _, m := range ms {
		l.ids[m.ID] = true
		l.Msgs = append(l.Msgs, &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: uint64(len(l.Msgs) + 1),
			Header: m.Header, Data: m.Data})
	}
}

// PublishAll stores each of ms whose id it has not seen (fault.Exists for
// the others).
func (l *Log) PublishAll(_ context.Context, ms []stream.Message) []error {
	errs := make([]error, len(ms))
	for i, m := range ms {
		if l.ids[m.ID] {
			errs[i] = fault.Errorf("publish "+m.Subject, fault.Exists, "duplicate message id %s", m.ID)
			continue
		}
		l.Put(m)
	}
	return errs
}

// Last returns the last message on subject.
func (l *Log) Last(_ context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	if err := l.Errs[subject]; err != nil {
		return nil, err
	}
	for i := len(l.Msgs) - 1; i >= 0; i-- {
		if l.Msgs[i].Subject == subject {
			return l.Msgs[i], nil
		}
	}
	return nil, fault.Errorf("get "+subject, fault.NotFound, "nothing stored")
}

// Next returns the first message at or after sequence seq on a subject
// matching filter (NATS wildcards * and >).
func (l *Log) Next(_ context.Context, seq uint64, filter string) (*jetstream.RawStreamMsg, error) {
	if err := l.Errs[filter]; err != nil {
		return nil, err
	}
	for _, m := range l.Msgs[min(max(seq, 1)-1, uint64(len(l.Msgs))):] {
		if server.SubjectMatchesFilter(m.Subject, filter) {
			return m, nil
		}
	}
	return nil, fault.Errorf("get "+filter, fault.NotFound, "nothing stored")
}

// Events decodes the events among ms.
func Events(t testing.TB, ms []stream.Message) []*event.Event {
	t.Helper()
	var out []*event.Event
	for _, m := range ms {
		if !strings.HasPrefix(m.Subject, stream.EventSubject()) {
			continue
		}
		e, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("event %s: %v", m.Subject, err)
		}
		out = append(out, e)
	}
	return out
}
