package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/fault"
)

// LeaderReader reads one stream through its leader. The relay's streams
// allow direct gets, which any replica answers from its own copy; a replica
// that has not caught up yet answers "no such message" for a write that was
// acknowledged a moment ago. Where that answer would make a stage skip work
// for good (a recipient that never gets a file), it reads here instead.
type LeaderReader struct {
	nc      *nats.Conn
	subject string
	stream  string
}

// NewLeaderReader returns a reader of stream name over js's connection.
func NewLeaderReader(js jetstream.JetStream, name string) *LeaderReader {
	return &LeaderReader{nc: js.Conn(), subject: "$JS.API.STREAM.MSG.GET." + name, stream: name}
}

// msgGetRequest is the JetStream API's STREAM.MSG.GET request.
type msgGetRequest struct {
	Seq        uint64 `json:"seq,omitempty"`
	LastBySubj string `json:"last_by_subj,omitempty"`
	NextBySubj string `json:"next_by_subj,omitempty"`
}

// msgGetResponse is its answer.
type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// Last returns the last message on subject; fault.NotFound when there is
// none or only the marker of an expired one (as Get).
func (r *LeaderReader) Last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	m, err := r.get(ctx, msgGetRequest{LastBySubj: subject})
	if err != nil {
		return nil, err
	}
	if m.Header.Get(MarkerHeader) != "" {
		return nil, fault.Errorf("get "+subject, fault.NotFound, "expired")
	}
	return m, nil
}

// Next returns the first message at or after sequence seq on a subject
// matching filter; fault.NotFound when there is none.
func (r *LeaderReader) Next(ctx context.Context, seq uint64, filter string) (*jetstream.RawStreamMsg, error) {
	return r.get(ctx, msgGetRequest{Seq: seq, NextBySubj: filter})
}

func (r *LeaderReader) get(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	op := fmt.Sprintf("get %s%s from %s's leader", req.LastBySubj, req.NextBySubj, r.stream)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fault.E(op, fault.Internal, err)
	}
	reply, err := r.nc.RequestWithContext(ctx, r.subject, body)
	if err != nil {
		return nil, classify(op, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fault.E(op, fault.Unavailable, err)
	}
	if resp.Error != nil {
		return nil, classify(op, resp.Error)
	}
	if resp.Message == nil {
		return nil, fault.Errorf(op, fault.Unavailable, "an answer without a message")
	}
	m := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Sequence,
		Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fault.E(op, fault.Internal, err)
		}
	}
	return m, nil
}

// Scanner reads a stream in order by subject filter: a LeaderReader, or a
// stagetest.Log in a stage's tests.
type Scanner interface {
	Next(ctx context.Context, seq uint64, filter string) (*jetstream.RawStreamMsg, error)
}

// Each calls fn with every message stored on a subject matching filter, in
// the stream's order, and stops at the first error (fn's or a read's).
func Each(ctx context.Context, s Scanner, filter string, fn func(*jetstream.RawStreamMsg) error) error {
	for seq := uint64(1); ; {
		m, err := s.Next(ctx, seq, filter)
		if fault.Is(err, fault.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
}

// ReadYourWrites returns s, or, when s is replicated and allows direct
// gets, s with a GetLastMsgForSubject that asks the stream's leader before
// it answers "no such message". A direct get is answered by whichever
// replica the request reaches, and a replica that has not caught up yet
// does not know a write acknowledged a moment ago: a platform would read
// 404 for the notice it was just answered 202 for, or 409 for a message to
// an authority that has just been queued its delivery. Only the not-found
// path pays the second round trip; a single server is its own leader and
// is not asked twice.
func ReadYourWrites(s jetstream.Stream, js jetstream.JetStream) jetstream.Stream {
	info := s.CachedInfo()
	if info == nil || info.Config.Replicas < 2 || !info.Config.AllowDirect {
		return s
	}
	return &readYourWrites{Stream: s, leader: NewLeaderReader(js, info.Config.Name)}
}

// readYourWrites is a replicated stream whose negative answers come from
// its leader.
type readYourWrites struct {
	jetstream.Stream
	leader *LeaderReader
}

// GetLastMsgForSubject answers as the stream's leader when a replica says
// there is no message on subject. An expired message's marker is returned
// as it is, as a direct get returns it.
func (s *readYourWrites) GetLastMsgForSubject(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	m, err := s.Stream.GetLastMsgForSubject(ctx, subject)
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return m, err
	}
	m, err = s.leader.get(ctx, msgGetRequest{LastBySubj: subject})
	if fault.Is(err, fault.NotFound) {
		return nil, jetstream.ErrMsgNotFound
	}
	return m, err
}
