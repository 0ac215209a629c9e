package portal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/attachment"
	"github.com/noticerelay/noticerelay/pkg/country"
	"github.com/noticerelay/noticerelay/pkg/message"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/services/attachments"
	"github.com/noticerelay/noticerelay/services/status"
)

// listView is what the list of notices shows.
type listView struct {
	Notices []row
	Ready   bool
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	v := listView{Notices: s.index.list(platform(r))}
	select {
	case <-s.index.ready:
		v.Ready = true
	default:
	}
	s.app.Render(w, r, http.StatusOK, "list", "Your notices", v)
}

func (s *Service) newForm(w http.ResponseWriter, r *http.Request) {
	d := &draft{vals: url.Values{"reference": {newKey()}}}
	// A follow-up started from a notice's page names that notice.
	if ref := r.URL.Query().Get("follow_up_of"); ref != "" && len(ref) <= 128 {
		d.vals.Set("follow_up_of", ref)
	}
	s.app.Render(w, r, http.StatusOK, "form", "New notice", d.view(nil, nil, ""))
}

// postForm adds or removes an item of a list, or sends the notice.
func (s *Service) postForm(w http.ResponseWriter, r *http.Request) {
	d := (&draft{vals: r.PostForm}).renumber("", "")
	op := r.PostForm.Get("op")
	switch {
	case strings.HasPrefix(op, "add:"):
		path := strings.TrimPrefix(op, "add:")
		n := len(d.indices(path))
		d = d.renumber("", path)
		s.app.Render(w, r, http.StatusOK, "form", "New notice", d.view(nil, nil, fmt.Sprintf("%s[%d].", path, n)))
		return
	case strings.HasPrefix(op, "remove:"):
		d = d.renumber(strings.TrimPrefix(op, "remove:"), "")
		s.app.Render(w, r, http.StatusOK, "form", "New notice", d.view(nil, nil, ""))
		return
	case op == "check":
		s.check(w, r, d)
		return
	case op != "send" && op != "send-anyway":
		s.app.Error(w, r, http.StatusBadRequest, "The form was sent without saying what to do.")
		return
	}
	body, err := json.Marshal(d.body())
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	if op == "send" {
		// The warnings of a valid notice are shown before it is sent.
		if res := notice.Check(body, s.checkOptions()); len(res.Errors) == 0 && len(res.Warnings) > 0 {
			fv := d.view(nil, warningErrors(res.Warnings), "")
			fv.Confirm = true
			s.app.Render(w, r, http.StatusOK, "form", "New notice", fv)
			return
		}
	}
	ans, err := s.api(r, http.MethodPost, "/v1/notices", body, nil)
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	switch ans.Status {
	case http.StatusAccepted, http.StatusOK:
		var acc struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(ans.Body, &acc); err != nil || !notice.ValidID(acc.ID) {
			s.app.Fail(w, r, fmt.Errorf("portal: intake's answer %s: %v", ans.Body, err))
			return
		}
		if ans.Status == http.StatusOK {
			s.app.Flash(w, "This notice was sent before: nothing new was stored.")
		} else {
			s.app.Flash(w, "The notice is stored: the relay now sends it to the police.")
		}
		http.Redirect(w, r, Base+"/notices/"+acc.ID, http.StatusSeeOther)
	case http.StatusBadRequest:
		p := ans.problem()
		s.app.Render(w, r, http.StatusBadRequest, "form", "New notice", d.view(p.Errors, nil, ""))
	case http.StatusConflict:
		p := ans.problem()
		fv := d.view([]fieldError{{Field: "reference", Message: p.Detail}}, nil, "")
		s.app.Render(w, r, http.StatusConflict, "form", "New notice", fv)
	default:
		fv := d.view(nil, nil, "")
		fv.Error = fmt.Sprintf("The relay could not take the notice now (%s); nothing was stored. Send the form again in a moment.",
			ans.problem().Detail)
		s.app.Render(w, r, ans.Status, "form", "New notice", fv)
	}
}

// check shows the draft's problems and warnings, as the relay's validator
// finds them, without sending anything.
func (s *Service) check(w http.ResponseWriter, r *http.Request, d *draft) {
	body, err := json.Marshal(d.body())
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	res := notice.Check(body, s.checkOptions())
	errs := make([]fieldError, len(res.Errors))
	for i, p := range res.Errors {
		errs[i] = fieldError{Field: p.Field, Message: p.Message}
	}
	fv := d.view(errs, warningErrors(res.Warnings), "")
	fv.Checked = len(errs) == 0
	s.app.Render(w, r, http.StatusOK, "form", "New notice", fv)
}

// checkOptions are intake's: the warnings shown before sending are the
// ones the relay answers after.
func (s *Service) checkOptions() notice.Options {
	states, _ := country.MemberStates(s.env.Config.MemberStates)
	return notice.Options{Now: s.env.Now(), MemberStates: states}
}

func warningErrors(ws []notice.Warning) []fieldError {
	out := make([]fieldError, len(ws))
	for i, w := range ws {
		out[i] = fieldError{Field: w.Field, Message: w.Message}
	}
	return out
}

// noticeView is what a notice's page shows.
type noticeView struct {
	Notice   status.View
	Threads  []thread
	Messages int
	// Errors of the last form on the page, by field.
	Errors map[string]string
	// Reason and Reply keep what was typed into a refused form.
	Reason, Reply, ReplyTo string
	// Key names the reply form's message: sent twice, it is stored once.
	Key string
	// Files are the notice's evidence files; Relevance keeps the upload
	// form's choice; MaxFiles and MaxBytes are the relay's limits.
	Files     []attachments.File
	Relevance string
	MaxFiles  int
	MaxBytes  int64
	// New holds the authorities' messages that no one of the platform had
	// seen before this page showed them; Unread counts them.
	New    map[string]bool
	Unread int
}

// Problems lists the errors of the page's forms, for the summary at its
// top, each with the id of its field.
func (v *noticeView) Problems() []problemLink {
	var out []problemLink
	fileID := "file"
	if !v.TakesFiles() {
		fileID = "file-error" // the form is not shown: its error is
	}
	for _, f := range []struct{ field, id, label string }{
		{"file", fileID, "File"}, {"relevance", "relevance-reported", "What the file is"},
		{"text", "reply-" + v.ReplyTo, "Message to " + v.ReplyTo}, {"reason", "reason", "Reason"},
	} {
		if m := v.Errors[f.field]; m != "" {
			out = append(out, problemLink{ID: f.id, Label: f.label, Message: m})
		}
	}
	return out
}

// TakesFiles reports whether the page offers to upload a file.
func (v *noticeView) TakesFiles() bool {
	return v.Notice.WithdrawnAt == "" && len(v.Files) < v.MaxFiles
}

// problemLink is one error of the summary, linked to its field.
type problemLink struct{ ID, Label, Message string }

// thread is one authority's conversation with the platform.
type thread struct {
	Authority string
	Messages  []message.Message
	// Last is the last message the authority sent, which a reply answers.
	Last string
	// Unread counts the authority's messages not seen before.
	Unread int
}

// notice reads a notice's state and messages through the API: a notice
// of another platform is not found, as for the API.
func (s *Service) notice(w http.ResponseWriter, r *http.Request) (*noticeView, bool) {
	id := strings.ToLower(r.PathValue("id"))
	ans, err := s.api(r, http.MethodGet, "/v1/notices/"+url.PathEscape(id), nil, nil)
	if err != nil {
		s.app.Fail(w, r, err)
		return nil, false
	}
	if ans.Status != http.StatusOK {
		s.apiError(w, r, ans)
		return nil, false
	}
	v := &noticeView{Errors: map[string]string{}, Key: uuid.NewString(), Relevance: attachment.Reported, New: map[string]bool{},
		MaxFiles: s.env.Config.Limits.AttachmentsPerNotice, MaxBytes: s.env.Config.Limits.AttachmentBytes}
	if err := json.Unmarshal(ans.Body, &v.Notice); err != nil {
		s.app.Fail(w, r, fmt.Errorf("portal: the status answer: %w", err))
		return nil, false
	}
	ans, err = s.api(r, http.MethodGet, "/v1/notices/"+url.PathEscape(id)+"/messages", nil, nil)
	if err != nil {
		s.app.Fail(w, r, err)
		return nil, false
	}
	if ans.Status != http.StatusOK {
		s.apiError(w, r, ans)
		return nil, false
	}
	var th struct {
		Messages []message.Message `json:"messages"`
	}
	if err := json.Unmarshal(ans.Body, &th); err != nil {
		s.app.Fail(w, r, fmt.Errorf("portal: the messages answer: %w", err))
		return nil, false
	}
	// The notice is the platform's (the API answered): its files and what
	// the platform has read of its messages.
	ctx, cancel := s.env.StoreContext(r.Context())
	defer cancel()
	if v.Files, err = attachments.Files(ctx, s.env.JS, s.env.Pseudonyms, v.Notice.ID); err != nil {
		s.app.Fail(w, r, fmt.Errorf("portal: the notice's files: %w", err))
		return nil, false
	}
	seen, _, err := readMarks(ctx, s.index.reads, platform(r), v.Notice.ID)
	if err != nil {
		s.app.Fail(w, r, err)
		return nil, false
	}
	byAuthority := map[string]*thread{}
	for _, rc := range v.Notice.Recipients {
		v.Threads = append(v.Threads, thread{Authority: rc.Authority})
	}
	for i := range v.Threads {
		byAuthority[v.Threads[i].Authority] = &v.Threads[i]
	}
	for _, m := range th.Messages {
		a := m.From
		if a == message.Platform {
			a = m.To
		}
		t := byAuthority[a]
		if t == nil {
			v.Threads = append(v.Threads, thread{Authority: a})
			t = &v.Threads[len(v.Threads)-1]
			byAuthority = map[string]*thread{}
			for i := range v.Threads {
				byAuthority[v.Threads[i].Authority] = &v.Threads[i]
			}
		}
		t.Messages = append(t.Messages, m)
		if m.From != message.Platform {
			t.Last = m.ID
			if !seen[m.ID] {
				v.New[m.ID] = true
				t.Unread++
				v.Unread++
			}
		}
		v.Messages++
	}
	return v, true
}

// apiError shows an API error answer as a page.
func (s *Service) apiError(w http.ResponseWriter, r *http.Request, ans *answer) {
	if ans.Status == http.StatusNotFound {
		s.app.Error(w, r, http.StatusNotFound, "Your platform has no such notice.")
		return
	}
	s.app.Error(w, r, ans.Status, "The relay could not answer now: "+ans.problem().Detail)
}

func (s *Service) noticePage(w http.ResponseWriter, r *http.Request) {
	v, ok := s.notice(w, r)
	if !ok {
		return
	}
	// What the page shows is read now: marked for every person of the
	// platform, before the page goes out.
	if len(v.New) > 0 {
		ids := make([]string, 0, len(v.New))
		for id := range v.New {
			ids = append(ids, id)
		}
		ctx, cancel := s.env.StoreContext(r.Context())
		err := s.index.markRead(ctx, s.index.reads, platform(r), v.Notice.ID, ids)
		cancel()
		if err != nil {
			// The messages stay unread: shown as new again next time.
			s.env.Log.Warn("portal: marking messages read", zap.Error(err))
		}
	}
	s.app.Render(w, r, http.StatusOK, "notice", "Notice "+v.Notice.Reference, v)
}

// statusJSON is the notice's state as the API answers it, for the page's
// script to follow without a reload.
func (s *Service) statusJSON(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	ans, err := s.api(r, http.MethodGet, "/v1/notices/"+url.PathEscape(id), nil, nil)
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v := ans.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(ans.Status)
	_, _ = w.Write(ans.Body)
}

// withdraw asks the relay to withdraw the notice, with a reason.
func (s *Service) withdraw(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	reason := r.PostForm.Get("reason")
	ans, err := s.api(r, http.MethodPost, "/v1/notices/"+url.PathEscape(id)+"/withdraw", map[string]string{"reason": reason}, nil)
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	switch ans.Status {
	case http.StatusAccepted:
		s.app.Flash(w, "The withdrawal is stored: every recipient is told.")
		http.Redirect(w, r, Base+"/notices/"+id, http.StatusSeeOther)
	case http.StatusBadRequest:
		s.refused(w, r, ans, "reason", func(v *noticeView) { v.Reason = reason })
	default:
		s.apiError(w, r, ans)
	}
}

// reply sends a message to one authority of the notice.
func (s *Service) reply(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	f := r.PostForm
	req := message.PlatformRequest{To: f.Get("to"), Text: f.Get("text"), InReplyTo: f.Get("in_reply_to")}
	h := http.Header{}
	if k := f.Get("key"); k != "" {
		h.Set("Idempotency-Key", k)
	}
	ans, err := s.api(r, http.MethodPost, "/v1/notices/"+url.PathEscape(id)+"/messages", req, h)
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	switch ans.Status {
	case http.StatusCreated, http.StatusOK:
		s.app.Flash(w, "Your message to "+req.To+" is stored and on its way.")
		http.Redirect(w, r, Base+"/notices/"+id+"#thread-"+req.To, http.StatusSeeOther)
	case http.StatusBadRequest, http.StatusConflict:
		s.refused(w, r, ans, "text", func(v *noticeView) { v.Reply, v.ReplyTo = req.Text, req.To })
	default:
		s.apiError(w, r, ans)
	}
}

// refused shows the notice's page again with the API's errors next to
// the form's fields (field "" goes to def), keeping what was typed.
func (s *Service) refused(w http.ResponseWriter, r *http.Request, ans *answer, def string, keep func(*noticeView)) {
	p := ans.problem()
	errs := map[string]string{}
	for _, e := range p.Errors {
		f := e.Field
		if f == "" {
			f = def
		}
		errs[f] = e.Message
	}
	if len(p.Errors) == 0 {
		errs[def] = p.Detail
	}
	s.refusedWith(w, r, ans.Status, errs, keep)
}

// refusedWith shows the notice's page again with status and errs (by
// field) next to the form's fields, keeping what was typed.
func (s *Service) refusedWith(w http.ResponseWriter, r *http.Request, status int, errs map[string]string, keep func(*noticeView)) {
	v, ok := s.notice(w, r)
	if !ok {
		return
	}
	for f, m := range errs {
		v.Errors[f] = m
	}
	keep(v)
	s.app.Render(w, r, status, "notice", "Notice "+v.Notice.Reference, v)
}
