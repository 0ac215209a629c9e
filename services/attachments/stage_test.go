package attachments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/attachment"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/stagetest"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// fixture is the stage with its streams in memory: one Log for the reads
// through the leaders (and the stage's own link writes), a Store for the
// deliveries, and the set of withdrawn notices.
type fixture struct {
	s          *Service
	log        *stagetest.Log
	deliveries *stagetest.Store
	withdrawn  map[string]bool
	// withdrawErr fails the withdrawn check of a notice.
	withdrawErr map[string]error
	now         time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), withdrawn: map[string]bool{}, withdrawErr: map[string]error{},
		log: stagetest.NewLog(), deliveries: stagetest.NewStore()}
	env := stagetest.Env(t, &f.now, nil)
	env.Publisher = f.log
	f.s = New(env)
	f.s.leader = map[string]leaderReads{stream.Attachments: f.log, stream.Events: f.log, stream.Notices: f.log}
	f.s.withdrawn = func(_ context.Context, id string) (bool, error) { return f.withdrawn[id], f.withdrawErr[id] }
	f.s.read = f.deliveries
	var err error
	if f.s.sealer, err = delivery.NewSealer(env.Config); err != nil {
		t.Fatal(err)
	}
	return f
}

// notice stores the body of a notice with reference ref that follows up
// earlier ("": none) and returns its id.
func (f *fixture) notice(t *testing.T, ref, earlier string) string {
	t.Helper()
	rec, _ := stagetest.Record(t, ref, "DE", "DE", false, f.now.Add(-time.Hour))
	rec.FollowUpOfID = earlier
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	f.log.Put(stream.Message{Subject: stream.NoticeSubject(rec.ID), ID: rec.ID, Data: data})
	return rec.ID
}

// file stores a file of notice id in slot, as an upload does (index entry
// first), and returns its record as the stage's input.
func (f *fixture) file(t *testing.T, id string, slot int, content string) (*attachment.Record, stream.Input) {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	hexSum := hex.EncodeToString(sum[:])
	rec := &attachment.Record{V: attachment.Version, NoticeID: id, Platform: stagetest.Platform,
		ID: f.s.env.Pseudonyms.Attachment(id, hexSum), Slot: slot, Info: attachment.Info{SHA256: hexSum,
			Size: int64(len(content)), MediaType: "text/plain", Filename: "chat.txt", Relevance: attachment.Reported},
		Upload: "u" + content, Chunks: 1, ChunkSize: stream.AttachmentChunkSize, AddedAt: module.Timestamp(f.now)}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	idx := stream.AttachmentIndexSubject(f.s.env.Pseudonyms.Notice(id))
	subject := stream.AttachmentRecordSubject(id, slot)
	f.log.PublishAll(context.Background(), []stream.Message{{Subject: idx, ID: idx, Data: []byte(id)}})
	f.log.Put(stream.Message{Subject: subject, ID: subject, Data: data})
	return rec, stream.Input{Subject: subject, Data: data}
}

// queued stores routing's delivery of notice id to authority and its
// queued event, and returns the event as the stage's input. Priority
// escalation makes it an escalation copy, queued normal.
func (f *fixture) queued(t *testing.T, id, authority, priority string) stream.Input {
	t.Helper()
	kind := event.KindNotice
	if priority == event.KindEscalation {
		kind, priority = event.KindEscalation, "normal"
	}
	d := &delivery.Delivery{V: delivery.Version, ID: "d-" + authority + "-" + id[:8], NoticeID: id, Type: kind,
		Priority: priority, Platform: stagetest.Platform, BodySHA256: "sum"}
	dm, err := d.Message(authority)
	if err != nil {
		t.Fatal(err)
	}
	ev := d.Event(f.s.env.Pseudonyms, event.Queued, authority, "routing", f.now.Add(-time.Minute))
	em, err := ev.Message()
	if err != nil {
		t.Fatal(err)
	}
	f.deliveries.Put(dm)
	f.log.Put(em)
	return stream.Input{Subject: em.Subject, Data: em.Data}
}

// delivered lists, for each attachment delivery among ms, its authority,
// priority and file, and checks that its queued event comes with it.
func delivered(t *testing.T, f *fixture, ms []stream.Message) map[[3]string]bool {
	t.Helper()
	out := map[[3]string]bool{}
	queued := map[string]bool{}
	for _, e := range stagetest.Events(t, ms) {
		if e.Type == event.Queued {
			if e.Kind != event.KindAttachment || e.Actor != Name || !e.Time.Equal(f.now) {
				t.Errorf("queued event %+v", e)
			}
			queued[e.Delivery] = true
		}
	}
	for _, m := range ms {
		if stream.IsEventSubject(m.Subject) {
			continue
		}
		d, err := delivery.Decode(m.Data)
		if err != nil {
			t.Fatalf("%s: %v", m.Subject, err)
		}
		var authority string
		for _, a := range stagetest.Authorities {
			if m.Subject == stream.DeliverySubject(a, d.Priority, d.ID) {
				authority = a
			}
		}
		if authority == "" || d.Type != event.KindAttachment || m.ID == "" || !queued[d.ID] {
			t.Errorf("delivery %s: %+v (queued event: %v)", m.Subject, d, queued[d.ID])
		}
		if d.ID != deliveryID(d.NoticeID, authority, d.AttachmentID) {
			t.Errorf("delivery id %s is not the file's id for %s", d.ID, authority)
		}
		out[[3]string{authority, d.Priority, d.AttachmentID}] = true
	}
	if len(queued) != len(out) {
		t.Errorf("%d queued events for %d deliveries", len(queued), len(out))
	}
	return out
}

// deliveryID is the deterministic id of a file's delivery to an authority.
func deliveryID(noticeID, authority, file string) string {
	return (&attachment.Record{NoticeID: noticeID, ID: file}).DeliveryID(authority)
}

// TestFileToRecipients: a stored file is its attachment_added event and,
// for each authority queued its notice so far, a delivery and its queued
// event, with ids fixed by the input: the same input gives the same
// outputs, also once the stage's own queued events are stored.
func TestFileToRecipients(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.notice(t, "ref-1", "")
	f.queued(t, id, "de-bka", "urgent")
	f.queued(t, id, "fr-police", event.KindEscalation)
	f.queued(t, id, "de-bka", "urgent") // a redelivered queued event
	rec, in := f.file(t, id, 0, "chat log")
	out, err := f.s.stage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 5 {
		t.Fatalf("%d outputs, want 5: %+v", len(out), out)
	}
	evs := stagetest.Events(t, out)
	if e := evs[0]; e.Type != event.AttachmentAdded || e.Attachment != rec.ID || e.Notice != f.s.env.Pseudonyms.Notice(id) ||
		e.Platform != stagetest.Platform || e.Actor != Name || !e.Time.Equal(f.now) {
		t.Errorf("first output %+v, want the attachment_added event", e)
	}
	want := map[[3]string]bool{{"de-bka", "urgent", rec.ID}: true, {"fr-police", "normal", rec.ID}: true}
	if got := delivered(t, f, out); !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	// Stored, the stage's queued events are no new recipients, nor is a
	// delivery of another kind than the notice or an escalation copy of
	// it; a retry writes the same messages.
	f.log.PublishAll(ctx, out)
	other := event.Event{V: event.Version, Type: event.Queued, Notice: f.s.env.Pseudonyms.Notice(id), Time: f.now,
		Actor: "routing", Platform: stagetest.Platform, Priority: "normal", Recipient: "europol", Kind: event.KindWithdrawal,
		Delivery: "d-other"}
	om, err := other.Message()
	if err != nil {
		t.Fatal(err)
	}
	f.log.Put(om)
	again, err := f.s.stage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, out) {
		t.Errorf("second pass differs:\n%+v\n%+v", again, out)
	}
}

// TestWithdrawnFile: a file of a withdrawn notice is only its
// attachment_added event, and a recipient of a withdrawn notice is handed
// none of its files.
func TestWithdrawnFile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.notice(t, "ref-1", "")
	q := f.queued(t, id, "de-bka", "urgent")
	_, in := f.file(t, id, 0, "chat log")
	f.withdrawn[id] = true
	out, err := f.s.stage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if evs := stagetest.Events(t, out); len(out) != 1 || len(evs) != 1 || evs[0].Type != event.AttachmentAdded {
		t.Errorf("outputs %+v, want only the attachment_added event", out)
	}
	if out, err := f.s.stage(ctx, q); err != nil || len(out) != 0 {
		t.Errorf("recipient of a withdrawn notice: %v, %+v", err, out)
	}
}

// TestLaterRecipient: an authority queued a notice after its files were
// stored is handed every file of it and of the notices it follows up; the
// link it records hands it the files added to those later. A notice with
// no file of its own is found through its queued delivery.
func TestLaterRecipient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.notice(t, "ref-1", "")
	second := f.notice(t, "ref-2", first)
	third := f.notice(t, "ref-3", second)
	a0, _ := f.file(t, first, 0, "first")
	b0, _ := f.file(t, second, 0, "second")
	b1, _ := f.file(t, second, 1, "second, more")
	out, err := f.s.stage(ctx, f.queued(t, second, "ie-garda", "normal"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[[3]string]bool{{"ie-garda", "normal", a0.ID}: true, {"ie-garda", "normal", b0.ID}: true,
		{"ie-garda", "normal", b1.ID}: true}
	if got := delivered(t, f, out); len(out) != 6 || !reflect.DeepEqual(got, want) {
		t.Errorf("%d outputs, deliveries %v, want %v", len(out), got, want)
	}
	// A file added to the first notice now reaches the second's recipient,
	// and once an authority queued both.
	f.queued(t, first, "de-bka", "urgent")
	f.queued(t, second, "de-bka", "urgent")
	a1, in := f.file(t, first, 1, "first, later")
	out, err = f.s.stage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want = map[[3]string]bool{{"ie-garda", "normal", a1.ID}: true, {"de-bka", "urgent", a1.ID}: true}
	if got := delivered(t, f, out); len(out) != 5 || !reflect.DeepEqual(got, want) {
		t.Errorf("later file of the earlier notice: %d outputs, deliveries %v, want %v", len(out), got, want)
	}
	// The third notice has no files: its recipient gets the first two
	// notices' through the chain.
	out, err = f.s.stage(ctx, f.queued(t, third, "europol", "urgent"))
	if err != nil {
		t.Fatal(err)
	}
	want = map[[3]string]bool{}
	for _, r := range []*attachment.Record{a0, a1, b0, b1} {
		want[[3]string{"europol", "urgent", r.ID}] = true
	}
	if got := delivered(t, f, out); !reflect.DeepEqual(got, want) {
		t.Errorf("recipient of a notice without files: deliveries %v, want %v", got, want)
	}
	// A queued event whose delivery is not readable: retried while it may
	// be stored yet, nothing once it would have expired.
	ev := event.Event{V: event.Version, Type: event.Queued, Notice: f.s.env.Pseudonyms.Notice("nobody"),
		Time: f.now.Add(-time.Minute), Actor: "routing", Platform: stagetest.Platform, Priority: "normal",
		Recipient: "de-bka", Kind: event.KindNotice, Delivery: "d-gone"}
	em, err := ev.Message()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.stage(ctx, stream.Input{Subject: em.Subject, Data: em.Data}); !fault.Is(err, fault.Unavailable) {
		t.Errorf("delivery not readable yet: %v", err)
	}
	ev.Time = f.now.Add(-time.Duration(f.s.env.Config.Retention.Notices) - time.Hour)
	if em, err = ev.Message(); err != nil {
		t.Fatal(err)
	}
	if out, err := f.s.stage(ctx, stream.Input{Subject: em.Subject, Data: em.Data}); err != nil || len(out) != 0 {
		t.Errorf("delivery expired: %v, %+v", err, out)
	}
}

// TestReadErrors: a read that fails other than with NotFound fails the
// stage (the input is retried), with no outputs.
func TestReadErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.notice(t, "ref-1", "")
	second := f.notice(t, "ref-2", first)
	f.queued(t, first, "de-bka", "urgent")
	_, file := f.file(t, first, 0, "first")
	f.file(t, second, 0, "second")
	q := f.queued(t, second, "ie-garda", "normal")
	third := f.notice(t, "ref-3", "")
	thirdQ := f.queued(t, third, "fr-police", "normal")
	if _, err := f.s.stage(ctx, file); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.stage(ctx, q); err != nil {
		t.Fatal(err)
	}
	down := fault.Errorf("test", fault.Unavailable, "the store is down")
	ps := f.s.env.Pseudonyms
	for _, c := range []struct {
		name string
		in   stream.Input
		fail func() (undo func())
	}{
		{"withdrawn check of a file", file, failing(f.withdrawErr, first, down)},
		{"recipients of a file", file, failing(f.log.Errs, stream.EventSubject(ps.Notice(first), string(event.Queued), "*", "*"), down)},
		{"links of a file", file, failing(f.log.Errs, stream.AttachmentLinkFilter(first), down)},
		{"recipients of a linked notice", file, failing(f.log.Errs, stream.EventSubject(ps.Notice(second), string(event.Queued), "*", "*"), down)},
		{"index of a queued notice", q, failing(f.log.Errs, stream.AttachmentIndexSubject(ps.Notice(second)), down)},
		{"delivery of a queued notice", thirdQ, failing(f.deliveries.Errs,
			stream.DeliverySubject("fr-police", "normal", decodeEvent(t, thirdQ).Delivery), down)},
		{"body of the queued notice", q, failing(f.log.Errs, stream.NoticeSubject(second), down)},
		{"body of an earlier notice", q, failing(f.log.Errs, stream.NoticeSubject(first), down)},
		{"files of an earlier notice", q, failing(f.log.Errs, stream.AttachmentRecordSubject(first, 0), down)},
		{"withdrawn check of an earlier notice", q, failing(f.withdrawErr, first, down)},
	} {
		undo := c.fail()
		out, err := f.s.stage(ctx, c.in)
		undo()
		if !fault.Is(err, fault.Unavailable) || out != nil {
			t.Errorf("%s: %v, %d outputs; want the store's error and none", c.name, err, len(out))
		}
	}
	// A stored record that cannot be read is the relay's fault: retried.
	f.log.Put(stream.Message{Subject: stream.AttachmentRecordSubject(second, 1), Data: []byte("{")})
	if out, err := f.s.stage(ctx, q); !fault.Is(err, fault.Internal) || out != nil {
		t.Errorf("unreadable stored record: %v, %d outputs", err, len(out))
	}
}

// failing makes reads of key (a subject or filter) in errs fail with err.
func failing(errs map[string]error, key string, err error) func() func() {
	return func() func() {
		errs[key] = err
		return func() { delete(errs, key) }
	}
}

func decodeEvent(t *testing.T, in stream.Input) *event.Event {
	t.Helper()
	e, err := event.Decode(in.Data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestUndecodable: an input that cannot be decoded is poison: it would
// fail the same way on every retry.
func TestUndecodable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.notice(t, "ref-1", "")
	rec, _ := f.file(t, id, 0, "chat log")
	rec.AddedAt = "yesterday"
	badTime, _ := json.Marshal(rec)
	rec.AddedAt, rec.V = module.Timestamp(f.now), attachment.Version+1
	badVersion, _ := json.Marshal(rec)
	record := stream.AttachmentRecordSubject(id, 0)
	queued := stream.EventSubject(f.s.env.Pseudonyms.Notice(id), string(event.Queued), "de-bka", event.KindNotice)
	for _, in := range []stream.Input{{Subject: record, Data: []byte("{")}, {Subject: record, Data: badTime},
		{Subject: record, Data: badVersion}, {Subject: queued, Data: []byte("not json")}} {
		if out, err := f.s.stage(ctx, in); !fault.Is(err, fault.Poison) || out != nil {
			t.Errorf("%s %q: %v, %d outputs", in.Subject, in.Data, err, len(out))
		}
	}
}
