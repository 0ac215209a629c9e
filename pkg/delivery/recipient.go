package delivery

import (
	"context"

	"filippo.io/age"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Recipient returns authority's age recipient, if it has one: what an
// evidence file is sealed to as it streams out (services/attachments).
func (s *Sealer) Recipient(authority string) (age.Recipient, bool) {
	r, ok := s.recipients[authority]
	return r, ok
}

// Withheld reports whether d is an attachment delivery of a withdrawn
// notice: the inbox and push drop those not yet handed out (ack without
// hand-out), as the notice's withdrawal covers its files.
func Withheld(ctx context.Context, events jetstream.Stream, ps *event.Pseudonyms, d *Delivery) (bool, error) {
	if d.Type != event.KindAttachment {
		return false, nil
	}
	_, err := stream.Get(ctx, events, stream.EventSubject(ps.Notice(d.NoticeID), string(event.Withdrawn)))
	switch {
	case err == nil:
		return true, nil
	case fault.Is(err, fault.NotFound):
		return false, nil
	}
	return false, err
}
