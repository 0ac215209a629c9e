package attachments

import (
	"context"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/attachment"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// File is a stored evidence file of a notice, as its platform sees it:
// what it is and how far each recipient has received it.
type File struct {
	attachment.Info
	AddedAt    string
	Recipients []FileRecipient
}

// FileRecipient is the state of a file's delivery to one authority.
type FileRecipient struct {
	Authority                             string
	QueuedAt, DeliveredAt, AcknowledgedAt string
}

// Status is queued, delivered or acknowledged.
func (r FileRecipient) Status() string {
	switch {
	case r.AcknowledgedAt != "":
		return "acknowledged"
	case r.DeliveredAt != "":
		return "delivered"
	}
	return "queued"
}

// Files lists the evidence files of notice id by slot, each with its
// deliveries' steps read from the lifecycle events, through the streams'
// leaders (a file just stored is listed). The caller checks that the
// notice is the platform's: the portal reads it through the status API
// first.
func Files(ctx context.Context, js jetstream.JetStream, ps *event.Pseudonyms, id string) ([]File, error) {
	recs, err := readRecords(ctx, stream.NewLeaderReader(js, stream.Attachments), id)
	if err != nil {
		return nil, err
	}
	var out []File
	byID := map[string]*File{}
	var ids []string
	for _, rec := range recs {
		out = append(out, File{Info: rec.Info, AddedAt: rec.AddedAt})
		ids = append(ids, rec.ID)
	}
	for i := range out {
		byID[ids[i]] = &out[i]
	}
	if len(out) == 0 {
		return nil, nil
	}
	// Every per-recipient event of an attachment delivery of the notice:
	// nr.event.<notice>.<type>.<authority>.attachment.<file>.
	events := stream.NewLeaderReader(js, stream.Events)
	filter := stream.EventSubject(ps.Notice(id), "*", "*", event.KindAttachment, "*")
	for seq := uint64(1); ; {
		m, err := events.Next(ctx, seq, filter)
		if fault.Is(err, fault.NotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		seq = m.Sequence + 1
		ev, err := event.Decode(m.Data)
		if err != nil {
			return nil, fault.E("attachments", fault.Internal, err)
		}
		f := byID[ev.Attachment]
		if f == nil {
			continue // a file that has expired
		}
		i := slices.IndexFunc(f.Recipients, func(r FileRecipient) bool { return r.Authority == ev.Recipient })
		if i < 0 {
			f.Recipients = append(f.Recipients, FileRecipient{Authority: ev.Recipient})
			i = len(f.Recipients) - 1
		}
		r := &f.Recipients[i]
		at := module.Timestamp(ev.Time)
		switch ev.Type {
		case event.Queued:
			r.QueuedAt = at
		case event.AttachmentDelivered, event.Delivered:
			r.DeliveredAt = at
		case event.Acknowledged:
			r.AcknowledgedAt = at
		}
	}
	for i := range out {
		slices.SortFunc(out[i].Recipients, func(a, b FileRecipient) int { return strings.Compare(a.Authority, b.Authority) })
	}
	return out, nil
}
