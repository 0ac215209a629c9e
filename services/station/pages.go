package station

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/noticerelay/noticerelay/pkg/notice"
	store "github.com/noticerelay/noticerelay/pkg/station"
	"github.com/noticerelay/noticerelay/pkg/web"
)

//go:embed templates
var files embed.FS

func templates() fs.FS {
	sub, _ := fs.Sub(files, "templates")
	return sub
}

// label turns a code such as human_trafficking into "human trafficking".
func label(s string) string { return strings.ReplaceAll(s, "_", " ") }

var funcs = template.FuncMap{
	"label": label,
	"rfc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// stamp shows an RFC 3339 time stamp of the relay as the pages show times.
	"stamp": func(s string) string {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC().Format("2006-01-02 15:04 UTC")
		}
		return s
	},
	"deref": func(p *int) int { return *p },
	"yesno": func(b *bool) string {
		switch {
		case b == nil:
			return "not stated"
		case *b:
			return "yes"
		}
		return "no"
	},
	"isImage": func(mt string) bool { return slices.Contains(inlineTypes, mt) },
	"inc":     func(i int) int { return i + 1 },
}

func (s *Station) routes() *http.ServeMux {
	mux := http.NewServeMux()
	a := s.app
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /{$}", a.Require(s.inbox))
	mux.HandleFunc("GET /notices/{id}", a.Require(s.notice))
	mux.HandleFunc("GET /notices/{id}/print", a.Require(s.print))
	mux.HandleFunc("GET /notices/{id}/export", a.Require(s.export))
	mux.HandleFunc("POST /notices/{id}/triage", a.Require(s.triage))
	mux.HandleFunc("POST /notices/{id}/notes", a.Require(s.note))
	mux.HandleFunc("POST /notices/{id}/messages", a.Require(s.message))
	mux.HandleFunc("GET /notices/{id}/thread", a.Require(s.thread))
	mux.HandleFunc("GET /notices/{id}/attachments/{delivery}", a.Require(s.attachment))
	mux.HandleFunc("GET /access-log", a.Require(s.accessLog, RoleLead))
	mux.HandleFunc("GET /access-log.csv", a.Require(s.accessLogCSV, RoleLead))
	mux.HandleFunc("GET /users", a.Require(s.users, RoleLead))
	mux.HandleFunc("POST /users/{user}/{action}", a.Require(s.userAction, RoleLead))
	return mux
}

func (s *Station) nav(r *http.Request, u *web.Account) []web.NavItem {
	n, err := s.store.UrgentUnopened(r.Context())
	badge := strconv.Itoa(n)
	if err != nil {
		badge = "?"
	}
	items := []web.NavItem{{Label: "Inbox", Href: "/", Current: r.URL.Path == "/",
		Badge: badge, BadgeLabel: badge + " urgent notices not yet opened"}}
	if u.Role == RoleLead {
		items = append(items, web.NavItem{Label: "Access log", Href: "/access-log", Current: strings.HasPrefix(r.URL.Path, "/access-log")},
			web.NavItem{Label: "Users", Href: "/users", Current: r.URL.Path == "/users"})
	}
	return items
}

func (s *Station) alerts(r *http.Request) []web.Alert {
	st, err := s.store.Relay(r.Context())
	if err != nil {
		return []web.Alert{{Level: "error", Text: "The station's database could not be read: " + err.Error()}}
	}
	var out []web.Alert
	switch {
	case !st.UnreachableSince.IsZero():
		last := "never"
		if !st.LastContact.IsZero() {
			last = st.LastContact.UTC().Format("2006-01-02 15:04 UTC")
		}
		out = append(out, web.Alert{Level: "error", Text: fmt.Sprintf("The relay has not been reachable since %s (last contact: %s). "+
			"Showing what is stored here; new notices arrive as soon as it answers again.",
			st.UnreachableSince.UTC().Format("2006-01-02 15:04:05 UTC"), last)})
	case st.LastError != "":
		out = append(out, web.Alert{Level: "warning", Text: "Some deliveries could not be stored and stay at the relay, which hands them out again: " + st.LastError})
	}
	return out
}

type inboxData struct {
	Rows           []store.Row
	Filter         store.Filter
	States         []string
	Categories     []string
	UrgentUnopened int
	Limit          int
}

func (s *Station) inbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.Filter{State: q.Get("state"), Category: q.Get("category"), Priority: q.Get("urgency")}
	if f.State != "" && !slices.Contains(store.States, f.State) {
		f.State = ""
	}
	if f.Priority != "urgent" && f.Priority != "normal" {
		f.Priority = ""
	}
	d := inboxData{Filter: f, States: store.States, Limit: 500}
	var errs [3]error
	d.Rows, errs[0] = s.store.Inbox(r.Context(), f, d.Limit)
	d.Categories, errs[1] = s.store.Categories(r.Context())
	d.UrgentUnopened, errs[2] = s.store.UrgentUnopened(r.Context())
	if err := errors.Join(errs[:]...); err != nil {
		s.app.Fail(w, r, err)
		return
	}
	for _, c := range notice.Categories {
		if !slices.Contains(d.Categories, c) {
			d.Categories = append(d.Categories, c)
		}
	}
	slices.Sort(d.Categories)
	s.app.Render(w, r, http.StatusOK, "inbox", "Inbox", d)
}

type noticeData struct {
	*store.Notice
	States       []string
	Users        []User
	MessageKinds []string
	// ThreadVersion changes whenever the message thread does.
	ThreadVersion string
	Error         string
}

// load returns the notice of the request, or answers 404.
func (s *Station) load(w http.ResponseWriter, r *http.Request) *store.Notice {
	n, err := s.store.Notice(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.app.Error(w, r, http.StatusNotFound, "This station has no such notice.")
		return nil
	}
	if err != nil {
		s.app.Fail(w, r, err)
		return nil
	}
	return n
}

func (s *Station) noticePage(w http.ResponseWriter, r *http.Request, status int, n *store.Notice, msg string) {
	v, err := s.store.ThreadVersion(r.Context(), n.ID)
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	d := noticeData{Notice: n, States: store.States, Users: s.cfg.Users, MessageKinds: store.MessageKinds, Error: msg, ThreadVersion: v}
	title := "Notice " + n.Reference
	s.app.Render(w, r, status, "notice", title, d)
}

func (s *Station) notice(w http.ResponseWriter, r *http.Request) {
	u := web.User(r)
	if err := s.store.MarkOpened(r.Context(), r.PathValue("id"), u.ID, time.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.app.Fail(w, r, err)
		return
	}
	if n := s.load(w, r); n != nil {
		s.noticePage(w, r, http.StatusOK, n, "")
	}
}

func (s *Station) print(w http.ResponseWriter, r *http.Request) {
	n := s.load(w, r)
	if n == nil {
		return
	}
	if err := s.store.Log(r.Context(), store.Access{At: time.Now(), User: web.User(r).ID, Action: store.ActionPrint, Notice: n.ID}); err != nil {
		s.app.Fail(w, r, err)
		return
	}
	s.app.RenderPrint(w, r, "notice", "Notice "+n.Reference, noticeData{Notice: n})
}

// Export is a notice as the station exports it for case-management
// systems: the notice as forwarded, and the station's own handling.
type Export struct {
	Station    string             `json:"station"`
	ExportedAt string             `json:"exported_at"`
	ExportedBy string             `json:"exported_by"`
	Notice     json.RawMessage    `json:"notice"`
	Deliveries []string           `json:"deliveries"`
	StoredAt   string             `json:"stored_at"`
	Withdrawn  *exportWithdrawal  `json:"withdrawn,omitempty"`
	Triage     store.Triage       `json:"triage"`
	Notes      []store.Note       `json:"notes"`
	Attachment []store.Attachment `json:"attachments"`
	Messages   []store.Message    `json:"messages"`
}

type exportWithdrawal struct {
	At     string `json:"at"`
	Reason string `json:"reason"`
}

func (s *Station) export(w http.ResponseWriter, r *http.Request) {
	n := s.load(w, r)
	if n == nil {
		return
	}
	u := web.User(r)
	now := time.Now()
	e := Export{Station: s.site(r), ExportedAt: now.UTC().Format(time.RFC3339), ExportedBy: u.ID, Notice: n.Body,
		Deliveries: n.Deliveries, StoredAt: n.StoredAt.Format(time.RFC3339), Triage: n.Triage,
		Notes: append([]store.Note{}, n.Notes...), Attachment: append([]store.Attachment{}, n.Attachments...), Messages: append([]store.Message{}, n.Messages...)}
	if n.Withdrawn {
		e.Withdrawn = &exportWithdrawal{At: n.WithdrawnAt.Format(time.RFC3339), Reason: n.WithdrawalReason}
	}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	if err := s.store.Log(r.Context(), store.Access{At: now, User: u.ID, Action: store.ActionExport, Notice: n.ID}); err != nil {
		s.app.Fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="notice-%s.json"`, n.ID))
	_, _ = w.Write(append(data, '\n'))
}

// changed answers a form: back to the notice with a flash, or the page
// again with the field's problem.
func (s *Station) changed(w http.ResponseWriter, r *http.Request, err error, flash string) {
	var te *store.TriageError
	switch {
	case errors.As(err, &te):
		if n := s.load(w, r); n != nil {
			s.noticePage(w, r, http.StatusBadRequest, n, te.Error())
		}
	case errors.Is(err, store.ErrNotFound):
		s.app.Error(w, r, http.StatusNotFound, "This station has no such notice.")
	case err != nil:
		s.app.Fail(w, r, err)
	default:
		s.app.Flash(w, flash)
		http.Redirect(w, r, "/notices/"+r.PathValue("id"), http.StatusSeeOther)
	}
}

func (s *Station) triage(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	t := store.Triage{State: f.Get("state"), Destination: f.Get("destination"), Outcome: f.Get("outcome"), Assignee: f.Get("assignee")}
	users := make([]string, len(s.cfg.Users))
	for i, u := range s.cfg.Users {
		users[i] = u.ID
	}
	err := s.store.SetTriage(r.Context(), r.PathValue("id"), web.User(r).ID, t, users, time.Now())
	s.changed(w, r, err, "Saved: the notice is now "+label(t.State)+".")
}

func (s *Station) note(w http.ResponseWriter, r *http.Request) {
	if s.load(w, r) == nil {
		return
	}
	err := s.store.AddNote(r.Context(), r.PathValue("id"), web.User(r).ID, r.PostForm.Get("note"), time.Now())
	s.changed(w, r, err, "Note added.")
}

// message stores an analyst's message to the platform (pending) and
// sends it at once; when the relay cannot take it now, the sender tries
// again until it does. The page says which.
func (s *Station) message(w http.ResponseWriter, r *http.Request) {
	if s.load(w, r) == nil {
		return
	}
	f := r.PostForm
	id := uuid.NewString()
	err := s.store.QueueMessage(r.Context(), r.PathValue("id"), web.User(r).ID, id, f.Get("kind"), f.Get("text"),
		f.Get("in_reply_to"), time.Now())
	if err != nil {
		s.changed(w, r, err, "")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	outcome, err := s.sendNow(ctx, id)
	flash := "Sent to the platform."
	switch outcome {
	case outcomeRefused:
		flash = "The relay refused the message; it was not sent (the thread says why)."
	case outcomePending:
		flash = "Kept as pending: the relay could not take the message now. The station sends it as soon as the relay answers."
	}
	s.changed(w, r, nil, flash)
}

// thread answers the notice's message thread as an HTML fragment, for the
// page's script to show the platform's answers without a reload; with
// ?since= the version the page has, 204 while nothing changed.
func (s *Station) thread(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := s.store.ThreadVersion(r.Context(), id)
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	if since := r.URL.Query().Get("since"); since != "" && since == v {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	n := s.load(w, r)
	if n == nil {
		return
	}
	if err := s.store.Log(r.Context(), store.Access{At: time.Now(), User: web.User(r).ID, Action: store.ActionView, Notice: n.ID,
		Detail: "thread"}); err != nil {
		s.app.Fail(w, r, err)
		return
	}
	w.Header().Set("Live-Version", v)
	s.app.RenderFragment(w, r, "notice", "thread", noticeData{Notice: n, ThreadVersion: v})
}

type accessData struct {
	Entries []store.Access
	Next    int64
}

func (s *Station) accessLog(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	entries, err := s.store.AccessLog(r.Context(), before, 200)
	if err == nil {
		err = s.store.Log(r.Context(), store.Access{At: time.Now(), User: web.User(r).ID, Action: store.ActionLogView})
	}
	if err != nil {
		s.app.Fail(w, r, err)
		return
	}
	d := accessData{Entries: entries}
	if len(entries) == 200 {
		d.Next = entries[len(entries)-1].Seq
	}
	s.app.Render(w, r, http.StatusOK, "accesslog", "Access log", d)
}

func (s *Station) accessLogCSV(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Log(r.Context(), store.Access{At: time.Now(), User: web.User(r).ID, Action: store.ActionLogCSV}); err != nil {
		s.app.Fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="access-log.csv"`)
	if err := s.store.WriteAccessCSV(r.Context(), w); err != nil {
		s.log.Error("exporting the access log")
	}
}
