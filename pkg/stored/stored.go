// Package stored answers what the services ask about a notice the relay
// stored: whose it is and whether it was withdrawn. Intake, messages and
// attachments ask the same questions, so they ask them here.
package stored

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Notices reads what was stored about notices: their bodies and
// withdrawal requests in NR_NOTICES, which expire, and their events in
// NR_EVENTS, which do not.
type Notices struct {
	Notices, Events jetstream.Stream
	Pseudonyms      *event.Pseudonyms
}

// Record returns what was stored for notice id: its record, or, once the
// body has expired, what its accepted event keeps of it (platform, body
// SHA-256, time received). Nil: never stored.
func (n Notices) Record(ctx context.Context, id string) (*notice.Record, error) {
	m, err := stream.Get(ctx, n.Notices, stream.NoticeSubject(id))
	if err == nil {
		rec, _, err := notice.DecodeRecord(m.Data)
		if err != nil {
			return nil, fault.E("notice "+id, fault.Internal, err)
		}
		return rec, nil
	}
	if !fault.Is(err, fault.NotFound) {
		return nil, err
	}
	m, err = stream.Get(ctx, n.Events, event.SubjectOf(n.Pseudonyms.Notice(id), event.Accepted, "", ""))
	if fault.Is(err, fault.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ev, err := event.Decode(m.Data)
	if err != nil {
		return nil, fault.E("notice "+id, fault.Internal, err)
	}
	return &notice.Record{ID: id, Platform: ev.Platform, BodySHA256: ev.BodySHA256,
		ReceivedAt: module.Timestamp(ev.Time)}, nil
}

// Owns reports whether notice id exists and is platform's. An id that
// is not a notice id is no one's.
func (n Notices) Owns(ctx context.Context, platform, id string) (bool, error) {
	if !notice.ValidID(id) {
		return false, nil
	}
	rec, err := n.Record(ctx, id)
	if err != nil {
		return false, err
	}
	return rec != nil && rec.Platform == platform, nil
}

// Withdrawn reports whether the platform withdrew notice id: its request
// is stored (routing may not have recorded it yet) or its withdrawn event
// is.
func (n Notices) Withdrawn(ctx context.Context, id string) (bool, error) {
	_, err := stream.Get(ctx, n.Notices, stream.WithdrawSubject(id))
	if err == nil || !fault.Is(err, fault.NotFound) {
		return err == nil, err
	}
	_, err = stream.Get(ctx, n.Events, event.SubjectOf(n.Pseudonyms.Notice(id), event.Withdrawn, "", ""))
	if err == nil || !fault.Is(err, fault.NotFound) {
		return err == nil, err
	}
	return false, nil
}
