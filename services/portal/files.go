package portal

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/noticerelay/noticerelay/pkg/attachment"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// formOverhead bounds what an upload form sends besides its file: the
// token, the relevance, the parts' headers and boundaries.
const formOverhead = 16 << 10

// upload streams the file of the notice page's upload form to the
// relay's own POST /v1/notices/{id}/attachments, in the process: the
// attachments service stores it chunk by chunk as the browser sends it,
// with its limits, its idempotency and the platform's share, and its
// answer is what the person reads.
func (s *Service) upload(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	mr := web.Multipart(r)
	if mr == nil {
		s.app.Error(w, r, http.StatusBadRequest, "The file was not sent with the upload form.")
		return
	}
	relevance := attachment.Reported
	refuse := func(status int, msg string) {
		s.refusedWith(w, r, status, map[string]string{"file": msg}, func(v *noticeView) { v.Relevance = relevance })
	}
	// The form's parts come in its order: the relevance, then the file,
	// which is read as it arrives.
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			refuse(http.StatusBadRequest, "Choose a file to upload.")
			return
		}
		if err != nil {
			refuse(http.StatusBadRequest, "The form could not be read to its end: send it again.")
			return
		}
		switch p.FormName() {
		case "relevance":
			b, _ := io.ReadAll(io.LimitReader(p, 64))
			relevance = string(b)
			continue
		case "file":
		default:
			continue
		}
		if p.FileName() == "" {
			refuse(http.StatusBadRequest, "Choose a file to upload.")
			return
		}
		h := http.Header{}
		ct := p.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": p.FileName()}))
		// A form far larger than a file may be is refused before it is
		// read, as the API refuses a body whose length says so.
		length := int64(-1)
		if r.ContentLength-formOverhead > s.env.Config.Limits.AttachmentBytes {
			length = r.ContentLength - formOverhead
		}
		ans, err := s.apiStream(w, r, http.MethodPost, "/v1/notices/"+url.PathEscape(id)+"/attachments?relevance="+
			url.QueryEscape(relevance), p, length, h)
		if err != nil {
			s.app.Fail(w, r, err)
			return
		}
		s.uploaded(w, r, id, p.FileName(), relevance, ans)
		return
	}
}

// uploaded shows the attachments service's answer to an upload.
func (s *Service) uploaded(w http.ResponseWriter, r *http.Request, id, name, relevance string, ans *answer) {
	switch ans.Status {
	case http.StatusCreated:
		s.app.Flash(w, "The file "+name+" is stored: every recipient receives it.")
		http.Redirect(w, r, Base+"/notices/"+id+"#files", http.StatusSeeOther)
		return
	case http.StatusOK:
		s.app.Flash(w, "The file "+name+" was uploaded before: nothing new was stored.")
		http.Redirect(w, r, Base+"/notices/"+id+"#files", http.StatusSeeOther)
		return
	case http.StatusNotFound, http.StatusUnauthorized:
		s.apiError(w, r, ans)
		return
	}
	p := ans.problem()
	errs := map[string]string{}
	for _, e := range p.Errors {
		f := "file"
		if e.Field == "relevance" {
			f = "relevance"
		}
		msg := e.Message
		switch e.Field {
		case "body":
			msg = "The file " + msg
		case "Content-Type":
			msg = "The file's media type " + msg
		case "relevance":
			msg = "What the file is " + msg
		}
		if errs[f] != "" {
			msg = errs[f] + "; " + msg
		}
		errs[f] = msg
	}
	if len(errs) == 0 {
		errs["file"] = upper(p.Detail) + "."
		if ans.Status == http.StatusTooManyRequests || ans.Status == http.StatusServiceUnavailable {
			errs["file"] = fmt.Sprintf("The relay could not take the file now (%s); nothing was stored. Send it again in a moment.", p.Detail)
		}
	}
	s.refusedWith(w, r, ans.Status, errs, func(v *noticeView) { v.Relevance = relevance })
}

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// size says how big n bytes are, for people.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
