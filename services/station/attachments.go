package station

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/inboxclient"
	store "github.com/noticerelay/noticerelay/pkg/station"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// maxAttachment bounds a downloaded file (the relay's default limit is 32 MiB).
const maxAttachment = 256 << 20

// fetchAttachments downloads the files of stored attachment deliveries
// and keeps them as received: a sealed one stays sealed until an analyst
// opens it; a clear one is checked against its SHA-256 first. A failure is
// recorded and tried again after the next round.
func (s *Station) fetchAttachments(ctx context.Context) {
	ids, err := s.store.PendingAttachments(ctx, 10)
	if err != nil {
		s.log.Error("reading attachments", zap.Error(err))
		return
	}
	for _, id := range ids {
		err := s.fetchAttachment(ctx, id)
		if errors.Is(err, inboxclient.ErrWithdrawn) {
			// 410: the platform withdrew the notice; the withdrawal delivery
			// marks the notice, and the file is not asked for again.
			if err := s.store.AttachmentWithdrawn(context.WithoutCancel(ctx), id, time.Now()); err != nil {
				s.log.Error("recording a withdrawn attachment", zap.String("delivery", id), zap.Error(err))
			}
			continue
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("attachment not downloaded yet", zap.String("delivery", id), zap.Error(err))
			_ = s.store.AttachmentFailed(context.WithoutCancel(ctx), id, err.Error())
		}
	}
}

func (s *Station) fetchAttachment(ctx context.Context, id string) error {
	sealed, err := s.store.Sealed(ctx, id)
	if err != nil {
		return err
	}
	body, err := s.client.Attachment(ctx, id)
	if err != nil {
		return err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, maxAttachment+1))
	if err != nil {
		return fmt.Errorf("downloading attachment %s: %w", id, err)
	}
	if len(data) > maxAttachment {
		return fmt.Errorf("attachment %s is larger than %d bytes", id, maxAttachment)
	}
	if !sealed {
		if err := s.check(ctx, id, data); err != nil {
			return err
		}
	}
	return s.store.KeepAttachment(context.WithoutCancel(ctx), id, data, sealed, time.Now())
}

// check compares data with the SHA-256 the delivery announced.
func (s *Station) check(ctx context.Context, id string, data []byte) error {
	var want string
	n, err := s.store.AttachmentNotice(ctx, id)
	if err != nil {
		return err
	}
	a, _, _, err := s.store.AttachmentFile(ctx, n, id)
	if err != nil {
		return err
	}
	want = a.SHA256
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("attachment %s: SHA-256 %s, the delivery announced %s", id, got, want)
	}
	return nil
}

// inlineTypes are the media types shown in the page; every other file is
// only downloaded.
var inlineTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// attachment serves a kept file: inline (an image in the notice page) or,
// with ?download=1, as a download; sealed files are opened now, and every
// file is checked against its SHA-256 before it is shown. Each is logged.
func (s *Station) attachment(w http.ResponseWriter, r *http.Request) {
	noticeID, id := r.PathValue("id"), r.PathValue("delivery")
	a, data, sealed, err := s.store.AttachmentFile(r.Context(), noticeID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.app.Error(w, r, http.StatusNotFound, "This notice has no such attachment.")
		return
	case err != nil:
		s.app.Fail(w, r, err)
		return
	case data == nil:
		s.app.Error(w, r, http.StatusNotFound, "The file has not been downloaded from the relay yet.")
		return
	}
	if sealed {
		rd, err := age.Decrypt(bytes.NewReader(data), s.cfg.identities...)
		if err == nil {
			data, err = io.ReadAll(rd)
		}
		if err != nil {
			s.app.Fail(w, r, fmt.Errorf("opening attachment %s: %w", id, err))
			return
		}
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != a.SHA256 {
		s.app.Error(w, r, http.StatusBadGateway, "The file does not match the SHA-256 the relay announced; it is not shown.")
		return
	}
	download := r.URL.Query().Get("download") == "1" || !slices.Contains(inlineTypes, a.MediaType)
	action := store.ActionAttachment
	if download {
		action = store.ActionDownload
	}
	if err := s.store.Log(r.Context(), store.Access{At: time.Now(), User: web.User(r).ID, Action: action, Notice: noticeID,
		Detail: "attachment=" + id}); err != nil {
		s.app.Fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.MediaType)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if download {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Filename}))
	}
	_, _ = w.Write(data)
}
