// Package portal is the platforms' web portal, served by the relay under
// /portal/ on its HTTP listener: a person of a small platform signs in
// (with one of the platform's tokens, or a password of their own), writes
// a notice in a form, follows its recipients, answers the authorities'
// messages and withdraws it. Every action goes through the relay's API
// handlers themselves, called inside the process for the signed-in
// platform: a notice sent here is stored, routed, audited and authorised
// exactly as one sent to POST /v1/notices.
package portal

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/module"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// Name is the service's name in `serve --services`.
const Name = "portal"

// Base is the path the portal is served under.
const Base = "/portal"

// SessionTTL is how long a person stays signed in.
const SessionTTL = 8 * time.Hour

//go:embed templates
var files embed.FS

// Service is the portal.
type Service struct {
	env   *module.Env
	app   *web.App
	index *index
	wg    sync.WaitGroup
}

// New returns the portal.
func New(env *module.Env) *Service {
	return &Service{env: env}
}

// needed are the API routes the portal calls: the services that serve
// them must run in the same process.
var needed = []struct{ method, path, service string }{
	{http.MethodPost, "/v1/notices", "intake"},
	{http.MethodGet, "/v1/notices/00000000-0000-0000-0000-000000000000", "status"},
	{http.MethodGet, "/v1/notices/00000000-0000-0000-0000-000000000000/messages", "messages"},
	{http.MethodPost, "/v1/notices/00000000-0000-0000-0000-000000000000/attachments", "attachments"},
}

// Start registers the portal's pages and starts its list of notices.
func (s *Service) Start(ctx context.Context) error {
	for _, n := range needed {
		req, _ := http.NewRequest(n.method, n.path, nil)
		if _, pattern := s.env.Mux.Handler(req); pattern == "" {
			return fmt.Errorf("portal: needs service %s in the same process (serve --services ...,%s,portal)", n.service, n.service)
		}
	}
	s.app = &web.App{Base: Base, Product: "noticerelay portal", Site: "Notices to the police (DSA Art. 18)",
		Footer:   "the platforms' portal of noticerelay · what you send here goes to the police",
		Accounts: accounts(s.env.Config), Sessions: &web.MemorySessions{}, SessionTTL: SessionTTL,
		Secure: s.env.Config.HTTP.TLS.Enabled(), Nav: s.nav, Log: s.env.Log, Now: s.env.Now,
		SignIn: s.signIn,
		OnSignIn: func(_ context.Context, user string) error {
			s.env.Log.Info("portal: signed in", zap.String("account", user))
			return nil
		},
	}
	sub, _ := fs.Sub(files, "templates")
	fm := template.FuncMap{"authority": func(id string) string {
		if a := s.env.Config.Authority(id); a != nil && a.Name != "" && a.Name != id {
			return a.Name + " (" + id + ")"
		}
		return id
	}}
	for k, v := range funcs {
		fm[k] = v
	}
	if err := s.app.Parse(sub, fm); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	var err error
	if s.index, err = startIndex(ctx, s.env, &s.wg); err != nil {
		return err
	}
	mux := http.NewServeMux()
	a := s.app
	mux.HandleFunc("GET "+Base+"/{$}", a.Require(s.list))
	mux.HandleFunc("GET "+Base+"/notices/new", a.Require(s.newForm))
	mux.HandleFunc("POST "+Base+"/notices/new", a.Require(s.postForm))
	mux.HandleFunc("GET "+Base+"/notices/{id}", a.Require(s.noticePage))
	mux.HandleFunc("GET "+Base+"/notices/{id}/status", a.Require(s.statusJSON))
	mux.HandleFunc("POST "+Base+"/notices/{id}/withdraw", a.Require(s.withdraw))
	mux.HandleFunc("POST "+Base+"/notices/{id}/messages", a.Require(s.reply))
	mux.HandleFunc("POST "+Base+"/notices/{id}/attachments", a.Require(s.upload))
	h := a.Handler(mux)
	s.env.Mux.Handle(Base+"/", h)
	s.env.Mux.Handle("GET "+Base, http.RedirectHandler(Base+"/", http.StatusSeeOther))
	return nil
}

// Wait blocks until the list of notices has stopped following.
func (s *Service) Wait() { s.wg.Wait() }

// accounts are every platform's token account and its users.
func accounts(c *config.Config) map[string]web.Account {
	out := map[string]web.Account{}
	for _, p := range c.Platforms {
		out[tokenAccount(p.ID)] = web.Account{ID: tokenAccount(p.ID), Name: p.Name + " (platform token)", Org: p.ID}
		for _, u := range p.Users {
			id := p.ID + "/" + u.ID
			out[id] = web.Account{ID: id, Name: u.Name + " · " + p.Name, Org: p.ID, PasswordHash: u.Password}
		}
	}
	return out
}

func tokenAccount(platform string) string { return platform + "/(token)" }

// signIn takes either a platform's bearer token, or a platform, user and
// password.
func (s *Service) signIn(r *http.Request) (*web.Account, string) {
	if tok := strings.TrimSpace(r.PostForm.Get("token")); tok != "" {
		p, ok := s.env.Auth.Lookup(tok)
		if !ok || p.Role != auth.Platform {
			return nil, "This is not a platform token of this relay."
		}
		acc := s.app.Accounts[tokenAccount(p.ID)]
		return &acc, ""
	}
	platform := strings.ToLower(strings.TrimSpace(r.PostForm.Get("platform")))
	user := strings.ToLower(strings.TrimSpace(r.PostForm.Get("user")))
	acc, known := s.app.Accounts[platform+"/"+user]
	if user == "" || strings.Contains(user, "/") {
		known = false
	}
	if ok := web.PasswordMatches(r.PostForm.Get("password"), acc.PasswordHash); !ok || !known {
		return nil, "Unknown platform or user, or wrong password."
	}
	return &acc, ""
}

func (s *Service) nav(r *http.Request, _ *web.Account) []web.NavItem {
	p := r.URL.Path
	notices := web.NavItem{Label: "Notices", Href: Base + "/",
		Current: p == Base+"/" || (strings.HasPrefix(p, Base+"/notices/") && p != Base+"/notices/new")}
	unread := 0
	for _, n := range s.index.list(platform(r)) {
		unread += n.Unread
	}
	if unread > 0 {
		notices.Badge, notices.BadgeLabel = strconv.Itoa(unread), fmt.Sprintf("%d unread message%s", unread, plural(unread))
	}
	return []web.NavItem{notices, {Label: "New notice", Href: Base + "/notices/new", Current: p == Base+"/notices/new"}}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// platform is the signed-in person's platform.
func platform(r *http.Request) string { return web.User(r).Org }

// answer is what an API handler answered.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// problem is an API error answer (RFC 9457 with field errors).
type problem struct {
	Title  string       `json:"title"`
	Detail string       `json:"detail"`
	Errors []fieldError `json:"errors"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (a *answer) problem() problem {
	var p problem
	_ = json.Unmarshal(a.Body, &p)
	if p.Detail == "" {
		p.Detail = p.Title
	}
	if p.Detail == "" {
		p.Detail = http.StatusText(a.Status)
	}
	return p
}

// api calls the relay's own handler of method and path as the signed-in
// person's platform, as if the platform had sent the request with its
// token.
func (s *Service) api(r *http.Request, method, path string, body any, header http.Header) (*answer, error) {
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		default:
			data, err := json.Marshal(body)
			if err != nil {
				return nil, fmt.Errorf("portal: encoding %s %s: %w", method, path, err)
			}
			rd = bytes.NewReader(data)
		}
	}
	if body != nil && header.Get("Content-Type") == "" {
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("Content-Type", "application/json")
	}
	return s.call(nil, r, method, path, rd, -2, header)
}

// apiStream calls the relay's own handler with body streamed as it is
// read (length -1 when unknown); the handler may set deadlines on w's
// connection, as it does on its own requests.
func (s *Service) apiStream(w http.ResponseWriter, r *http.Request, method, path string, body io.Reader, length int64, header http.Header) (*answer, error) {
	return s.call(w, r, method, path, body, length, header)
}

// call serves an in-process request to the relay's handlers as the
// signed-in person's platform; length -2 keeps what NewRequest sets.
func (s *Service) call(w http.ResponseWriter, r *http.Request, method, path string, body io.Reader, length int64, header http.Header) (*answer, error) {
	ctx := auth.WithPrincipal(r.Context(), auth.Principal{Role: auth.Platform, ID: platform(r)})
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return nil, fmt.Errorf("portal: %s %s: %w", method, path, err)
	}
	if length != -2 {
		req.ContentLength = length
	}
	req.RemoteAddr = r.RemoteAddr
	for k, v := range header {
		req.Header[k] = v
	}
	rec := &recorder{header: http.Header{}, w: w}
	s.env.Mux.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &answer{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}, nil
}

// recorder keeps a handler's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	// w is the person's request's writer, whose connection's deadlines a
	// handler may move (http.ResponseController); nil for none.
	w http.ResponseWriter
}

// Unwrap lets http.ResponseController reach the connection of w.
func (w *recorder) Unwrap() http.ResponseWriter { return w.w }

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

var funcs = template.FuncMap{
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"article": func(s string) string {
		if s != "" && strings.ContainsRune("aeiouAEIOU", rune(s[0])) {
			return "an"
		}
		return "a"
	},
	"size":   size,
	"plural": plural,
	"short": func(ts string) string {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return ts
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
}
