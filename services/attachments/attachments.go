// Package attachments takes evidence files from platforms and hands them
// to every recipient of their notice (contract section 7). A file streams
// into NR_ATTACHMENTS in chunks while its SHA-256 is computed, so it never
// sits whole in memory; its record, written after the last chunk, is the
// commit point and the 201. A stage then queues one attachment delivery
// per (file, recipient), also for recipients that a notice gains later.
// Authorities fetch the bytes with GET /v1/inbox/{delivery id}/attachment,
// sealed to their age recipient when they have one.
package attachments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/attachment"
	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/fault"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/stored"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

// Name is the service's name in `serve --services` and in events.
const Name = attachment.Service

// idle is how long an upload or a download may stall between two chunks
// before the connection is closed: a 32 MiB file may take longer than
// the server's whole-request timeouts over a slow line.
const idle = 60 * time.Second

// Service is the attachments service.
type Service struct {
	env         *module.Env
	attachments jetstream.Stream
	deliveries  jetstream.Stream
	events      jetstream.Stream
	notices     jetstream.Stream
	lookup      stored.Notices
	// leader reads what the stage must not miss (see stream.LeaderReader):
	// each side of the race between a new file and a new recipient must
	// see the other's write once it is stored.
	leader map[string]leaderReads
	// withdrawn is lookup.Withdrawn and read reads NR_DELIVERIES: the
	// stage's other reads, which its tests answer from memory.
	withdrawn func(ctx context.Context, id string) (bool, error)
	read      stream.Reader
	sealer    *delivery.Sealer
	buffers   sync.Pool
	wg        sync.WaitGroup

	stored  *prometheus.CounterVec
	bytesIn prometheus.Counter
	served  *prometheus.CounterVec
	gone    *prometheus.CounterVec
}

// New returns the attachments service.
func New(env *module.Env) *Service {
	s := &Service{env: env,
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_attachments_uploads_total",
			Help: "Evidence file uploads, by outcome (stored, repeated, refused).",
		}, []string{"outcome"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "noticerelay_attachments_stored_bytes_total",
			Help: "Bytes of evidence files stored.",
		}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_attachments_downloads_total",
			Help: "Evidence files streamed to authorities, by authority.",
		}, []string{"authority"}),
		gone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "noticerelay_attachments_withdrawn_downloads_total",
			Help: "Downloads refused (410) because the file's notice was withdrawn, by authority.",
		}, []string{"authority"}),
	}
	s.buffers.New = func() any { b := make([]byte, stream.AttachmentChunkSize); return &b }
	env.Metrics.MustRegister(s.stored, s.bytesIn, s.served, s.gone)
	return s
}

// Start registers the routes and starts the stage that queues the
// deliveries.
func (s *Service) Start(ctx context.Context) error {
	for name, st := range map[string]*jetstream.Stream{stream.Attachments: &s.attachments, stream.Deliveries: &s.deliveries,
		stream.Events: &s.events, stream.Notices: &s.notices} {
		var err error
		if *st, err = s.env.Stream(ctx, name); err != nil {
			return fmt.Errorf("attachments: %w", err)
		}
	}
	s.lookup = stored.Notices{Notices: s.notices, Events: s.events, Pseudonyms: s.env.Pseudonyms}
	s.withdrawn = s.lookup.Withdrawn
	s.read = stream.Streams{stream.Deliveries: s.deliveries}
	s.leader = map[string]leaderReads{}
	for _, name := range []string{stream.Attachments, stream.Events, stream.Notices} {
		s.leader[name] = stream.NewLeaderReader(s.env.JS, name)
	}
	var err error
	if s.sealer, err = delivery.NewSealer(s.env.Config); err != nil {
		return fmt.Errorf("attachments: %w", err)
	}
	if err := s.startStage(ctx); err != nil {
		return err
	}
	s.env.Mux.HandleFunc("POST /v1/notices/{id}/attachments", s.upload)
	s.env.Mux.HandleFunc("GET /v1/inbox/{id}/attachment", s.download)
	return nil
}

// Wait blocks until the stage has stopped.
func (s *Service) Wait() { s.wg.Wait() }

func conflict(w http.ResponseWriter, title, detail string) {
	httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusConflict, Title: title, Detail: detail})
}

func (s *Service) tooLarge(w http.ResponseWriter) {
	httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusRequestEntityTooLarge, Title: "file too large",
		Detail: fmt.Sprintf("a file may have at most %d bytes (limits.attachment_bytes)", s.env.Config.Limits.AttachmentBytes)})
}

func (s *Service) upload(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	// An upload holds one of the platform's slots while its body streams
	// in, so one platform's uploads cannot take every other caller's turn.
	var up attachment.Upload
	var errs []httpapi.FieldError
	p, release, ok := s.env.Admit(w, r, auth.Platform, func() bool {
		up, errs = attachment.ParseUpload(r)
		if r.ContentLength > s.env.Config.Limits.AttachmentBytes {
			// Refused before a byte of the body is read.
			s.stored.WithLabelValues("refused").Inc()
			s.tooLarge(w)
			return false
		}
		return true
	})
	if !ok {
		return
	}
	defer release()
	ctx, cancel := s.env.StoreContext(r.Context())
	owned, err := s.lookup.Owns(ctx, p.ID, id)
	var withdrawn bool
	if err == nil && owned {
		withdrawn, err = s.lookup.Withdrawn(ctx, id)
	}
	cancel()
	switch {
	case err != nil:
		httpapi.Error(w, s.env.Log, err)
		return
	case !owned:
		httpapi.NotFound(w, "notice")
		return
	case len(errs) > 0:
		httpapi.BadRequest(w, "invalid attachment", errs...)
		return
	case withdrawn:
		s.stored.WithLabelValues("refused").Inc()
		conflict(w, "notice withdrawn", "the notice was withdrawn: it takes no new attachments")
		return
	}
	rec, status, err := s.store(w, r, p.ID, id, up)
	if err != nil {
		s.stored.WithLabelValues("refused").Inc()
		var tooLarge *http.MaxBytesError
		var pr *problem
		switch {
		case errors.As(err, &tooLarge):
			s.tooLarge(w)
		case errors.As(err, &pr):
			httpapi.WriteProblem(w, pr.Problem)
		default:
			httpapi.Error(w, s.env.Log, err)
		}
		return
	}
	if status == http.StatusCreated {
		s.stored.WithLabelValues("stored").Inc()
		s.bytesIn.Add(float64(rec.Size))
	} else {
		s.stored.WithLabelValues("repeated").Inc()
	}
	httpapi.JSON(w, status, rec.Info)
}

// problem is an answer decided while storing.
type problem struct{ httpapi.Problem }

func (p *problem) Error() string { return p.Detail }

// store streams the body into chunks of a new upload, then records the
// file in the notice's next free slot: 201, or 200 when the notice holds
// the same bytes already. Chunks of an upload that ends otherwise are
// purged (and would expire unread anyway: no record names them).
func (s *Service) store(w http.ResponseWriter, r *http.Request, platform, id string, up attachment.Upload) (*attachment.Record, int, error) {
	upload := nuid.Next()
	committed := false
	defer func() {
		if !committed {
			s.purge(id, upload)
		}
	}()
	// The notice's index entry comes before any record of it (see
	// startStage); stored before, it is refused as such.
	ictx, icancel := s.env.StoreContext(r.Context())
	isubj := stream.AttachmentIndexSubject(s.env.Pseudonyms.Notice(id))
	err := stream.Store(ictx, s.env.Publisher, stream.Message{Subject: isubj, ID: isubj, Data: []byte(id)})
	icancel()
	if err != nil {
		return nil, 0, err
	}
	body := http.MaxBytesReader(w, r.Body, s.env.Config.Limits.AttachmentBytes)
	rc := http.NewResponseController(w)
	bp := s.buffers.Get().(*[]byte)
	defer s.buffers.Put(bp)
	buf := *bp
	h := sha256.New()
	var size int64
	chunks := 0
	for {
		_ = rc.SetReadDeadline(time.Now().Add(idle))
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			ctx, cancel := s.env.StoreContext(r.Context())
			chunk := stream.AttachmentChunkSubject(id, upload, chunks)
			perr := stream.Store(ctx, s.env.Publisher, stream.Message{Subject: chunk, ID: chunk, Data: buf[:n]})
			cancel()
			if perr != nil {
				return nil, 0, perr
			}
			chunks++
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, 0, err
			}
			return nil, 0, &problem{httpapi.Problem{Status: http.StatusBadRequest, Title: "body cut short",
				Detail: "the file could not be read to its end", Errors: []httpapi.FieldError{{Field: "body", Message: "incomplete"}}}}
		}
	}
	if size == 0 {
		return nil, 0, &problem{httpapi.Problem{Status: http.StatusBadRequest, Title: "invalid attachment",
			Detail: "the body is the file itself", Errors: []httpapi.FieldError{{Field: "body", Message: "is empty"}}}}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	rec := &attachment.Record{V: attachment.Version, NoticeID: id, Platform: platform,
		ID: s.env.Pseudonyms.Attachment(id, sum), Info: attachment.Info{SHA256: sum, Size: size, MediaType: up.MediaType,
			Filename: up.Filename, Relevance: up.Relevance}, Upload: upload, Chunks: chunks,
		ChunkSize: stream.AttachmentChunkSize, AddedAt: module.Timestamp(s.env.Now())}
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	limit := s.env.Config.Limits.AttachmentsPerNotice
	// Each pass either finds the file, finds no slot left, or takes the
	// next slot; losing that slot to a concurrent upload means one more
	// record to read, at most limit times.
	for range limit + 1 {
		recs, err := s.records(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		for _, prev := range recs {
			if prev.SHA256 == sum {
				return prev, http.StatusOK, nil
			}
		}
		if len(recs) >= limit {
			return nil, 0, &problem{httpapi.Problem{Status: http.StatusConflict, Title: "too many attachments",
				Detail: fmt.Sprintf("a notice may have at most %d attachments (limits.attachments_per_notice)", limit)}}
		}
		withdrawn, err := s.lookup.Withdrawn(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if withdrawn {
			return nil, 0, &problem{httpapi.Problem{Status: http.StatusConflict, Title: "notice withdrawn",
				Detail: "the notice was withdrawn: it takes no new attachments"}}
		}
		rec.Slot = len(recs)
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, 0, fault.E("attachments: encoding", fault.Internal, err)
		}
		subject := stream.AttachmentRecordSubject(id, rec.Slot)
		err = s.env.Publisher.PublishAll(ctx, []stream.Message{{Subject: subject, ID: subject, Data: data}})[0]
		switch {
		case err == nil:
			committed = true
			return rec, http.StatusCreated, nil
		case fault.Is(err, fault.Exists):
			continue // another upload took the slot: read it
		default:
			// The record may be stored all the same (a timeout): keep the
			// chunks it would name; a retry finds it, or they expire.
			committed = true
			return nil, 0, err
		}
	}
	return nil, 0, fault.Errorf("attachments", fault.Unavailable, "the notice's attachments kept changing")
}

// purge removes the chunks of an upload that no record names.
func (s *Service) purge(id, upload string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.env.Config.HTTP.StoreTimeout))
	defer cancel()
	if err := s.attachments.Purge(ctx, jetstream.WithPurgeSubject(stream.AttachmentUploadFilter(id, upload))); err != nil {
		// They expire with the stream's MaxAge, unread.
		s.env.Log.Debug("attachments: purging an unfinished upload", zap.Error(err))
	}
}

// records reads every attachment record of notice id, by slot.
func (s *Service) records(ctx context.Context, id string) ([]*attachment.Record, error) {
	return readRecords(ctx, s.leader[stream.Attachments], id)
}

// leaderReads is what the stage reads through a stream's leader: a
// *stream.LeaderReader, or in the stage's tests a stagetest.Log.
type leaderReads interface {
	Last(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error)
	Next(ctx context.Context, seq uint64, filter string) (*jetstream.RawStreamMsg, error)
}

// readRecords reads every attachment record of notice id, by slot, from
// the attachment stream's leader.
func readRecords(ctx context.Context, leader leaderReads, id string) ([]*attachment.Record, error) {
	var recs []*attachment.Record
	for slot := 0; ; slot++ {
		m, err := leader.Last(ctx, stream.AttachmentRecordSubject(id, slot))
		if fault.Is(err, fault.NotFound) {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		rec, err := attachment.Decode(m.Data)
		if err != nil {
			return nil, fault.E("attachments", fault.Internal, err)
		}
		recs = append(recs, rec)
	}
}

// download streams the file of an attachment delivery to its authority,
// sealed to its age recipient when it has one. The bytes are checked
// against the recorded SHA-256 on the way: a mismatch breaks the
// connection instead of ending it, so no client takes a wrong file for a
// whole one.
func (s *Service) download(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, release, ok := s.env.Admit(w, r, auth.Authority, func() bool {
		if !notice.ValidID(id) {
			httpapi.NotFound(w, "delivery")
			return false
		}
		return true
	})
	if !ok {
		return
	}
	defer release()
	ctx, cancel := s.env.StoreContext(r.Context())
	d, err := delivery.Find(ctx, s.deliveries, p.ID, id)
	var rec *attachment.Record
	if err == nil && d.Type == event.KindAttachment {
		var m *jetstream.RawStreamMsg
		if m, err = stream.Get(ctx, s.attachments, stream.AttachmentRecordSubject(d.NoticeID, d.AttachmentSlot)); err == nil {
			if rec, err = attachment.Decode(m.Data); err != nil {
				err = fault.E("attachments", fault.Internal, err)
			} else if rec.ID != d.AttachmentID {
				err = fault.Errorf("attachments", fault.NotFound, "the file has expired")
			}
		}
	}
	// The withdrawal covers the notice's files: once it is stored, no
	// path hands out their bytes, whether or not the delivery was handed
	// out before (a NATS consumer reads its queue itself, and the relay
	// cannot take a delivery back out of it; NR_DELIVERIES denies delete).
	var withdrawn bool
	if err == nil && d.Type == event.KindAttachment {
		withdrawn, err = s.withdrawn(ctx, d.NoticeID)
	}
	cancel()
	switch {
	case fault.Is(err, fault.NotFound):
		httpapi.NotFound(w, "attachment")
		return
	case err != nil:
		httpapi.Error(w, s.env.Log, err)
		return
	case d.Type != event.KindAttachment:
		httpapi.NotFound(w, "attachment")
		return
	case withdrawn:
		s.gone.WithLabelValues(p.ID).Inc()
		httpapi.WriteProblem(w, httpapi.Problem{Status: http.StatusGone, Title: "notice withdrawn",
			Detail: "the platform withdrew the notice: its files are no longer handed out; acknowledge the delivery"})
		return
	}
	s.served.WithLabelValues(p.ID).Inc()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	ar, sealed := s.sealer.Recipient(p.ID)
	if sealed {
		w.Header().Set("Content-Type", "application/age")
		w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.age"`)
	} else {
		w.Header().Set("Content-Type", rec.MediaType)
		w.Header().Set("Content-Length", strconv.FormatInt(rec.Size, 10))
		w.Header().Set("Content-Disposition", `attachment; filename="`+id+`"`)
	}
	w.WriteHeader(http.StatusOK)
	out := io.Writer(w)
	var finish func() error
	if sealed {
		// Streamed through age's writer: 64 KiB at a time, never whole.
		aw, err := age.Encrypt(w, ar)
		if err != nil {
			s.env.Log.Error("attachments: sealing", zap.Error(err))
			panic(http.ErrAbortHandler)
		}
		out, finish = aw, aw.Close
	}
	if err := s.stream(r.Context(), w, out, rec); err != nil {
		s.env.Log.Warn("attachments: download broken off", zap.String("delivery", id), zap.Error(err))
		panic(http.ErrAbortHandler)
	}
	if finish != nil {
		if err := finish(); err != nil {
			panic(http.ErrAbortHandler)
		}
	}
}

// stream writes rec's chunks to out one at a time, checking size and
// SHA-256.
func (s *Service) stream(ctx context.Context, w http.ResponseWriter, out io.Writer, rec *attachment.Record) error {
	rc := http.NewResponseController(w)
	h := sha256.New()
	var size int64
	for n := range rec.Chunks {
		sctx, cancel := s.env.StoreContext(ctx)
		m, err := stream.Get(sctx, s.attachments, stream.AttachmentChunkSubject(rec.NoticeID, rec.Upload, n))
		cancel()
		if err != nil {
			return fmt.Errorf("chunk %d: %w", n, err)
		}
		h.Write(m.Data)
		size += int64(len(m.Data))
		_ = rc.SetWriteDeadline(time.Now().Add(idle))
		if _, err := out.Write(m.Data); err != nil {
			return fmt.Errorf("writing chunk %d: %w", n, err)
		}
	}
	if size != rec.Size || hex.EncodeToString(h.Sum(nil)) != rec.SHA256 {
		return errors.New("the stored chunks do not match the record")
	}
	return nil
}
