package attachments

import (
	"context"
	"fmt"
	"time"

	"github.com/noticerelay/noticerelay/pkg/attachment"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// startStage creates the stage's consumers and starts them. Each file
// meets every recipient exactly once whichever comes first: a file's
// record is stored after its notice's index entry, so a recipient queued
// before a file is seen by the file's pass, and one queued after it sees
// the file in its own pass (the two passes may both see each other: the
// delivery id and the events' subjects make the second a no-op).
func (s *Service) startStage(ctx context.Context) error {
	files := stream.Durable(stream.AttachmentsConsumer, "queues one delivery per recipient of each stored evidence file",
		stream.AttachmentRecordFilter("*"))
	files.AckWait, files.MaxAckPending = 30*time.Second, 1024
	recipients := stream.Durable(stream.AttachmentsRecipientsConsumer, "queues every earlier evidence file for each recipient a notice gains",
		event.Filter(event.Queued, event.KindNotice), event.Filter(event.Queued, event.KindEscalation))
	recipients.AckWait = 30 * time.Second
	for _, c := range []*stream.Consumer{
		{Name: stream.AttachmentsConsumer, Stream: stream.Attachments, Config: files, Max: 32},
		{Name: stream.AttachmentsRecipientsConsumer, Stream: stream.Events, Config: recipients, Max: 256},
	} {
		c.Workers, c.Log, c.Stage, c.Store, c.JS, c.PoisonAttempts = 1, s.env.Log, s.stage, s.env.Publisher, s.env.JS,
			s.env.Config.Deliveries.PoisonAttempts
		if err := c.Start(ctx, &s.wg); err != nil {
			return fmt.Errorf("attachments: %w", err)
		}
	}
	return nil
}

// stage turns a stored file, or a recipient a notice gains, into its
// events and deliveries.
func (s *Service) stage(ctx context.Context, in stream.Input) ([]stream.Message, error) {
	if stream.IsEventSubject(in.Subject) {
		return s.recipient(ctx, in.Data)
	}
	return s.file(ctx, in.Data)
}

// recipientOf is an authority that receives a notice, with the priority
// of its queue.
type recipientOf struct{ authority, priority string }

// file is a stored file's attachment_added event and one delivery for
// every recipient its notice has so far (none once it is withdrawn).
func (s *Service) file(ctx context.Context, data []byte) ([]stream.Message, error) {
	rec, err := attachment.Decode(data)
	if err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	added, err := time.Parse(time.RFC3339Nano, rec.AddedAt)
	if err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	ps := s.env.Pseudonyms.Notice(rec.NoticeID)
	ev := event.Event{Type: event.AttachmentAdded, Notice: ps, Time: added, Actor: Name, Platform: rec.Platform,
		Attachment: rec.ID}
	em, err := ev.Message()
	if err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	out := []stream.Message{em}
	withdrawn, err := s.withdrawn(ctx, rec.NoticeID)
	if err != nil {
		return nil, err
	}
	if withdrawn {
		return out, nil
	}
	rs, err := s.recipients(ctx, ps)
	if err != nil {
		return nil, err
	}
	// The recipients of the notices that follow this one up or supersede
	// it receive its files too.
	later, err := s.linked(ctx, rec.NoticeID)
	if err != nil {
		return nil, err
	}
	for _, id := range later {
		more, err := s.recipients(ctx, s.env.Pseudonyms.Notice(id))
		if err != nil {
			return nil, err
		}
		rs = append(rs, more...)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.authority] {
			continue
		}
		seen[r.authority] = true
		ms, err := s.deliver(rec, r)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// recipient is one delivery of every file of a notice for an authority
// that was just queued the notice (or an escalation copy of it), and of
// every file of the earlier notices it follows up or supersedes.
func (s *Service) recipient(ctx context.Context, data []byte) ([]stream.Message, error) {
	q, err := event.Decode(data)
	if err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	id, err := s.noticeOf(ctx, q)
	if err != nil || id == "" {
		return nil, err
	}
	ids, err := s.earlier(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []stream.Message
	for i, nid := range ids {
		if i > 0 {
			// Written before the earlier notice's files are read (see
			// startStage): a file added to it later finds this recipient.
			ls := stream.AttachmentLinkSubject(nid, id)
			if err := stream.Store(ctx, s.env.Publisher, stream.Message{Subject: ls, ID: ls, Data: []byte(id)}); err != nil {
				return nil, err
			}
		}
		recs, err := s.records(ctx, nid)
		if err != nil || len(recs) == 0 {
			if err != nil {
				return nil, err
			}
			continue
		}
		withdrawn, err := s.withdrawn(ctx, nid)
		if err != nil {
			return nil, err
		}
		if withdrawn {
			continue
		}
		for _, rec := range recs {
			ms, err := s.deliver(rec, recipientOf{q.Recipient, q.Priority})
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		}
	}
	return out, nil
}

// noticeOf returns the id of the notice of a queued event (which names it
// only by its pseudonym): from the attachment index when it has files,
// else from the queued delivery; "" once that has expired.
func (s *Service) noticeOf(ctx context.Context, q *event.Event) (string, error) {
	m, err := s.leader[stream.Attachments].Last(ctx, stream.AttachmentIndexSubject(q.Notice))
	if err == nil {
		return string(m.Data), nil
	}
	if !fault.Is(err, fault.NotFound) {
		return "", err
	}
	data, err := s.read.Read(ctx, stream.DeliverySubject(q.Recipient, q.Priority, q.Delivery))
	if fault.Is(err, fault.NotFound) {
		if s.env.Now().Sub(q.Time) < time.Duration(s.env.Config.Retention.Notices) {
			// Routing stores the queued event and the delivery together;
			// the delivery may not be readable yet.
			return "", fault.Errorf("attachments", fault.Unavailable, "delivery %s not found yet", q.Delivery)
		}
		return "", nil
	}
	if err != nil {
		return "", err
	}
	d, err := delivery.Decode(data)
	if err != nil {
		return "", fault.E("attachments", fault.Internal, err)
	}
	return d.NoticeID, nil
}

// maxChain bounds how far back the stage follows follow_up_of and
// supersedes.
const maxChain = 20

// earlier returns id and the notices it follows up or supersedes, and
// theirs, as far as their bodies are kept.
func (s *Service) earlier(ctx context.Context, id string) ([]string, error) {
	ids := []string{id}
	seen := map[string]bool{id: true}
	for i := 0; i < len(ids) && len(ids) < maxChain; i++ {
		m, err := s.leader[stream.Notices].Last(ctx, stream.NoticeSubject(ids[i]))
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rec, _, err := notice.DecodeRecord(m.Data)
		if err != nil {
			continue // routing deals with an unreadable body
		}
		for _, e := range []string{rec.FollowUpOfID, rec.SupersedesID} {
			if e != "" && !seen[e] {
				seen[e] = true
				ids = append(ids, e)
			}
		}
	}
	return ids, nil
}

// linked returns the notices recorded as following up or superseding
// notice id.
func (s *Service) linked(ctx context.Context, id string) ([]string, error) {
	var out []string
	filter := stream.AttachmentLinkFilter(id)
	for seq := uint64(1); ; {
		m, err := s.leader[stream.Attachments].Next(ctx, seq, filter)
		if err != nil {
			if fault.Is(err, fault.NotFound) {
				return out, nil
			}
			return nil, err
		}
		seq = m.Sequence + 1
		out = append(out, string(m.Data))
	}
}

// deliver is rec's delivery to r (sealed to its age recipient) and its
// queued event.
func (s *Service) deliver(rec *attachment.Record, r recipientOf) ([]stream.Message, error) {
	d, err := rec.Delivery(r.authority, r.priority)
	if err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	q := d.Event(s.env.Pseudonyms, event.Queued, r.authority, Name, s.env.Now())
	if err := s.sealer.Seal(r.authority, d); err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	dm, err := d.Message(r.authority)
	if err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	qm, err := q.Message()
	if err != nil {
		return nil, fault.E("attachments", fault.Poison, err)
	}
	return []stream.Message{dm, qm}, nil
}

// recipients lists the authorities queued notice pseudonym so far: its
// recipients, and escalation targets, each once.
func (s *Service) recipients(ctx context.Context, pseudonym string) ([]recipientOf, error) {
	var out []recipientOf
	seen := map[string]bool{}
	filter := stream.EventSubject(pseudonym, string(event.Queued), "*", "*")
	for seq := uint64(1); ; {
		m, err := s.leader[stream.Events].Next(ctx, seq, filter)
		if err != nil {
			if fault.Is(err, fault.NotFound) {
				return out, nil
			}
			return nil, err
		}
		seq = m.Sequence + 1
		ev, err := event.Decode(m.Data)
		if err != nil {
			return nil, fault.E("attachments", fault.Internal, err)
		}
		if (ev.Kind == event.KindNotice || ev.Kind == event.KindEscalation) && !seen[ev.Recipient] {
			seen[ev.Recipient] = true
			out = append(out, recipientOf{ev.Recipient, ev.Priority})
		}
	}
}
