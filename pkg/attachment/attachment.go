// Package attachment defines evidence files (contract section 7): what a
// platform may upload with a notice, how a stored file is recorded, and how
// an authority sees it. A file, its name and its hash are personal data:
// they live in NR_ATTACHMENTS and in deliveries, both expiring with
// retention.notices, and never in an event or a log line (events name a
// file by its keyed pseudonym).
package attachment

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/event"
	"github.com/noticerelay/noticerelay/pkg/httpapi"
	"github.com/noticerelay/noticerelay/pkg/jsonbody"
	"github.com/noticerelay/noticerelay/pkg/notice"
)

// Service is the service that takes and hands out files, the actor of
// their events.
const Service = "attachments"

// Version is the schema version of stored records.
const Version = 1

// Relevance says why the platform sends a file.
const (
	// Reported: the content the notice is about (the default).
	Reported = "reported"
	// Supplemental: context the platform adds.
	Supplemental = "supplemental"
)

// MaxFilename is the longest file name, in characters.
const MaxFilename = 255

// Info is a stored file as the platform and the authorities see it.
type Info struct {
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
	Filename  string `json:"filename"`
	Relevance string `json:"relevance"`
}

// Upload is what the headers and query of an upload say about its file.
type Upload struct {
	MediaType string
	Filename  string
	Relevance string
}

// ParseUpload reads the file's description from an upload request,
// listing every problem.
func ParseUpload(r *http.Request) (Upload, []httpapi.FieldError) {
	var u Upload
	var errs []httpapi.FieldError
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		errs = append(errs, httpapi.FieldError{Field: "Content-Type", Message: "is required: the file's media type, e.g. image/png"})
	} else if mt, params, err := mime.ParseMediaType(ct); err != nil || !strings.Contains(mt, "/") {
		errs = append(errs, httpapi.FieldError{Field: "Content-Type", Message: "must be a media type such as image/png"})
	} else {
		u.MediaType = mime.FormatMediaType(mt, params)
	}
	if cd := r.Header.Get("Content-Disposition"); cd != "" {
		disp, params, err := mime.ParseMediaType(cd)
		switch {
		case err != nil || disp != "attachment":
			errs = append(errs, httpapi.FieldError{Field: "Content-Disposition", Message: `must be attachment; filename="..."`})
		default:
			u.Filename = params["filename"]
			if msg := checkFilename(u.Filename); msg != "" {
				errs = append(errs, httpapi.FieldError{Field: "Content-Disposition", Message: "filename " + msg})
			}
		}
	}
	q := r.URL.Query()
	for k := range q {
		if k != "relevance" {
			errs = append(errs, httpapi.FieldError{Field: k, Message: "unknown query parameter"})
		}
	}
	u.Relevance = Reported
	if q.Has("relevance") {
		u.Relevance = q.Get("relevance")
		if u.Relevance != Reported && u.Relevance != Supplemental {
			errs = append(errs, httpapi.FieldError{Field: "relevance", Message: "must be reported or supplemental"})
		}
	}
	return u, errs
}

func checkFilename(name string) string {
	switch {
	case name == "":
		return "is empty"
	case !utf8.ValidString(name):
		return "must be UTF-8"
	case utf8.RuneCountInString(name) > MaxFilename:
		return fmt.Sprintf("must be at most %d characters", MaxFilename)
	case name == "." || name == ".." || strings.ContainsAny(name, `/\`):
		return "must be a file name, not a path"
	case strings.ContainsFunc(name, unicode.IsControl):
		return "must not hold control characters"
	}
	return ""
}

// Record is a stored file: where its chunks are and what it is.
type Record struct {
	V        int    `json:"v"`
	NoticeID string `json:"notice_id"`
	Platform string `json:"platform"`
	// ID is the file's pseudonym (event.Pseudonyms.Attachment).
	ID   string `json:"id"`
	Slot int    `json:"slot"`
	Info
	// Upload names the chunks: stream.AttachmentChunkSubject(NoticeID,
	// Upload, 0 .. Chunks-1).
	Upload    string `json:"upload"`
	Chunks    int    `json:"chunks"`
	ChunkSize int    `json:"chunk_size"`
	AddedAt   string `json:"added_at"`
}

// Decode parses a stored record, refusing unknown versions.
func Decode(data []byte) (*Record, error) {
	return jsonbody.DecodeStored(data, "attachment record", func(v *Record) int { return v.V }, Version)
}

// DeliveryID is the one delivery id of r for recipient.
func (r *Record) DeliveryID(recipient string) string {
	return notice.AttachmentDeliveryID(r.NoticeID, recipient, r.ID)
}

// Delivery is r as a delivery of type attachment to recipient, not yet
// sealed.
func (r *Record) Delivery(recipient, priority string) (*delivery.Delivery, error) {
	body, err := json.Marshal(r.Info)
	if err != nil {
		return nil, fmt.Errorf("encoding attachment: %w", err)
	}
	return &delivery.Delivery{V: delivery.Version, ID: r.DeliveryID(recipient), NoticeID: r.NoticeID,
		Type: event.KindAttachment, Priority: priority, Platform: r.Platform, AttachmentBody: body,
		AttachmentID: r.ID, AttachmentSlot: r.Slot}, nil
}
