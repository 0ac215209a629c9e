// Package web is what every page of noticerelay's web applications needs,
// written once: the layout, sign-in and sign-out, sessions kept in a
// store, CSRF protection on every form, flash messages, security headers
// and the embedded assets. The receiving station, the platforms' portal
// and the auditors' page use it. An application is mounted at a path
// (Base: "" for the station, "/portal" and "/ui/audit" on the relay's
// listener), under which its sign-in, assets and cookies live.
package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

//go:embed assets templates
var files embed.FS

// Account is a user who may sign in.
type Account struct {
	ID           string
	Name         string
	Role         string
	PasswordHash string
	// Org is whom the account acts for (the portal's platform); empty for
	// applications of one organisation.
	Org string
}

// NavItem is a link of the navigation bar, with an optional badge.
type NavItem struct {
	Label, Href string
	Badge       string
	// BadgeLabel says what the badge counts, for screen readers.
	BadgeLabel string
	Current    bool
}

// Alert is a notice shown at the top of every page (e.g. an outage).
type Alert struct {
	Level string // info, warning or error
	Text  string
}

// Page is what every template receives; a page's own data is in Data.
type Page struct {
	// Base is the path the application is mounted at ("" or "/portal").
	Base string
	// Product names the application in the header and footer.
	Product string
	// Footer is the footer's line after the site's name.
	Footer string
	Site   string
	Title  string
	User   *Account
	CSRF   string
	Flash  string
	Nav    []NavItem
	Alerts []Alert
	// Print lays the page out for paper only.
	Print bool
	Data  any
}

// App is one web application: its name, accounts, sessions and pages.
type App struct {
	// Base is the path the application is mounted at: "" for the root,
	// else a path such as "/portal" without a trailing slash.
	Base string
	// Product names the application ("noticerelay station" when empty).
	Product string
	// Footer is the footer's line after Site (the station's when empty).
	Footer string
	// Site names the application's owner on every page (the station's authority).
	Site string
	// SiteOf, when set, names the owner per request instead of Site (the
	// station learns its authority's name from the relay).
	SiteOf     func(r *http.Request) string
	Accounts   map[string]Account
	Sessions   SessionStore
	SessionTTL time.Duration
	// Secure marks cookies Secure: set it when served over TLS.
	Secure bool
	// Nav and Alerts, when set, give every page of a signed-in user its
	// navigation and alerts.
	Nav    func(r *http.Request, u *Account) []NavItem
	Alerts func(r *http.Request) []Alert
	// OnSignIn and OnSignOut are told of each (the access log).
	OnSignIn, OnSignOut func(ctx context.Context, user string) error
	// SignIn, when set, checks the sign-in form instead of the user and
	// password of Accounts: it returns the account the form signs in, or
	// what to tell the person. Its account must be in Accounts.
	SignIn func(r *http.Request) (*Account, string)
	Log    *zap.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// SignInLimit bounds sign-in attempts (DefaultSignInLimit when zero).
	SignInLimit SignInLimit

	pages   map[string]*template.Template
	limiter signInLimiter
}

type ctxKey struct{}

type reqState struct {
	session Session
	user    *Account
	csrf    string
	// multipart is the rest of a multipart form, after its token.
	multipart *multipart.Reader
}

func (a *App) product() string {
	if a.Product == "" {
		return "noticerelay station"
	}
	return a.Product
}

// site names the application's owner for r.
func (a *App) site(r *http.Request) string {
	if a.SiteOf != nil {
		return a.SiteOf(r)
	}
	return a.Site
}

// Path returns p (starting with "/") under the application's base path.
func (a *App) Path(p string) string { return a.Base + p }

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Parse parses the application's page templates (every *.html of pages,
// each defining "content" and optionally "title" and "head", what the page
// adds to the layout's head: a style sheet of its own), each with the
// layout, and funcs for them.
func (a *App) Parse(pages fs.FS, funcs template.FuncMap) error {
	all := template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join": strings.Join,
		"path": a.Path,
	}
	for k, v := range funcs {
		all[k] = v
	}
	base, err := template.New("layout.html").Funcs(all).ParseFS(files, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("web: parsing the layout: %w", err)
	}
	a.pages = map[string]*template.Template{}
	add := func(fsys fs.FS, pattern string) error {
		names, err := fs.Glob(fsys, pattern)
		if err != nil {
			return err
		}
		for _, n := range names {
			if path.Base(n) == "layout.html" {
				continue
			}
			t, err := template.Must(base.Clone()).ParseFS(fsys, n)
			if err != nil {
				return fmt.Errorf("web: parsing %s: %w", n, err)
			}
			a.pages[strings.TrimSuffix(path.Base(n), ".html")] = t
		}
		return nil
	}
	if err := add(files, "templates/*.html"); err != nil {
		return err
	}
	return add(pages, "*.html")
}

// Handler wraps the application's routes with what every request needs:
// security headers, cross-origin protection, the session, and the CSRF
// token check of every state-changing request. It also serves the assets
// under /assets/ and sign-in and sign-out.
func (a *App) Handler(routes *http.ServeMux) http.Handler {
	assets, _ := fs.Sub(files, "assets")
	routes.Handle("GET "+a.Path("/assets/"), http.StripPrefix(a.Path("/assets/"), http.FileServerFS(assets)))
	routes.HandleFunc("GET "+a.Path("/signin"), a.signInPage)
	routes.HandleFunc("POST "+a.Path("/signin"), a.signIn)
	routes.HandleFunc("POST "+a.Path("/signout"), a.signOut)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Error(w, r, http.StatusForbidden, "This form came from another site and was refused.")
	}))
	inner := cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{}
		if s, ok := a.session(r); ok {
			if acc, ok := a.Accounts[s.User]; ok {
				st.session, st.user, st.csrf = s, &acc, s.CSRF
			}
		}
		if st.user == nil {
			// Signed out: the sign-in form's token is bound to a cookie of its own.
			if c, err := r.Cookie("nr_csrf"); err == nil && len(c.Value) == 43 {
				st.csrf = c.Value
			} else if r.Method == http.MethodGet {
				st.csrf = randomToken()
				http.SetCookie(w, a.cookie("nr_csrf", st.csrf, 0))
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, st))
		if r.Method != http.MethodGet && r.Method != http.MethodHead && isMultipart(r) {
			// A file upload streams: its token is its first part, read
			// before any byte of the file, and the route reads the rest
			// from Multipart(r).
			mr, err := csrfPart(r, st.csrf)
			if err != nil {
				a.Error(w, r, http.StatusForbidden, "The form was refused: its security token is missing or stale. Reload the page and try again.")
				return
			}
			st.multipart = mr
			routes.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := r.ParseForm(); err != nil {
				a.Error(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
			got := r.PostForm.Get("csrf")
			if st.csrf == "" || subtle.ConstantTimeCompare([]byte(got), []byte(st.csrf)) != 1 {
				a.Error(w, r, http.StatusForbidden, "The form was refused: its security token is missing or stale. Reload the page and try again.")
				return
			}
		}
		routes.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if a.Secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		inner.ServeHTTP(w, r)
	})
}

func state(r *http.Request) *reqState {
	if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

// isMultipart reports whether r's body is a multipart/form-data form.
func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// csrfPart reads the first part of a multipart form, which must be the
// field csrf holding token, and returns the reader of the other parts.
func csrfPart(r *http.Request, token string) (*multipart.Reader, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	p, err := mr.NextPart()
	if err != nil {
		return nil, err
	}
	if p.FormName() != "csrf" || p.FileName() != "" {
		return nil, fmt.Errorf("the first part is %q, not the token", p.FormName())
	}
	got, err := io.ReadAll(io.LimitReader(p, 64))
	if err != nil {
		return nil, err
	}
	if token == "" || subtle.ConstantTimeCompare(got, []byte(token)) != 1 {
		return nil, fmt.Errorf("a wrong token")
	}
	return mr, nil
}

// Multipart returns the parts of a multipart/form-data request after its
// CSRF token, which Handler has checked; nil for any other request. A
// form that uploads files puts its csrf field first, so that the token is
// checked before a byte of a file is read.
func Multipart(r *http.Request) *multipart.Reader { return state(r).multipart }

// User returns the signed-in user of a request, or nil.
func User(r *http.Request) *Account { return state(r).user }

// Require lets only signed-in users with one of roles (any role when none
// is given) reach h; others go to the sign-in page or get 403.
func (a *App) Require(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := User(r)
		if u == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, a.Path("/signin")+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			a.Error(w, r, http.StatusUnauthorized, "Sign in first.")
			return
		}
		if len(roles) > 0 && !contains(roles, u.Role) {
			a.Error(w, r, http.StatusForbidden, "Your role ("+u.Role+") may not see this page.")
			return
		}
		h(w, r)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Flash sets a one-time message shown on the next page.
func (a *App) Flash(w http.ResponseWriter, msg string) {
	http.SetCookie(w, a.cookie("nr_flash", url.QueryEscape(msg), time.Minute))
}

// Render writes the page template name with the layout.
func (a *App) Render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	a.render(w, r, status, name, &Page{Title: title, Data: data})
}

// RenderPrint writes the page template name laid out for paper.
func (a *App) RenderPrint(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	a.render(w, r, http.StatusOK, name, &Page{Title: title, Data: data, Print: true})
}

func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, p *Page) {
	t, ok := a.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	st := state(r)
	p.Base, p.Product, p.Site, p.User, p.CSRF = a.Base, a.product(), a.site(r), st.user, st.csrf
	p.Footer = a.Footer
	if p.Footer == "" {
		p.Footer = "receiving station of noticerelay · what is shown here is for official use only"
	}
	if c, err := r.Cookie("nr_flash"); err == nil {
		p.Flash, _ = url.QueryUnescape(c.Value)
		http.SetCookie(w, a.cookie("nr_flash", "", -1))
	}
	if st.user != nil {
		if a.Nav != nil {
			p.Nav = a.Nav(r, st.user)
		}
		if a.Alerts != nil {
			p.Alerts = a.Alerts(r)
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		if a.Log != nil {
			a.Log.Error("rendering page", zap.String("page", name), zap.Error(err))
		}
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// RenderFragment writes the template block of page name alone, without
// the layout: a part of a page that its script fetches to update it.
func (a *App) RenderFragment(w http.ResponseWriter, r *http.Request, name, block string, data any) {
	t, ok := a.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	st := state(r)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, &Page{Site: a.site(r), User: st.user, CSRF: st.csrf, Data: data}); err != nil {
		if a.Log != nil {
			a.Log.Error("rendering a fragment", zap.String("page", name), zap.String("block", block), zap.Error(err))
		}
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// Error shows an error page with status.
func (a *App) Error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a.Render(w, r, status, "error", http.StatusText(status), msg)
}

func (a *App) signInPage(w http.ResponseWriter, r *http.Request) {
	if User(r) != nil {
		http.Redirect(w, r, a.Path("/"), http.StatusSeeOther)
		return
	}
	a.Render(w, r, http.StatusOK, "signin", "Sign in", SignInData{Next: a.safeNext(r.URL.Query().Get("next"))})
}

// SignInData is what the sign-in page shows: the user typed, where to go
// next, and why the last attempt was refused.
type SignInData struct {
	User, Next, Error string
}

func (a *App) signIn(w http.ResponseWriter, r *http.Request) {
	id, pw := strings.TrimSpace(r.PostForm.Get("user")), r.PostForm.Get("password")
	next := a.safeNext(r.PostForm.Get("next"))
	lim := a.SignInLimit
	if lim == (SignInLimit{}) {
		lim = DefaultSignInLimit
	}
	if len(id) > 100 {
		id = id[:100]
	}
	if wait := a.limiter.allow(lim, source(r), id, a.now()); wait > 0 {
		if a.Log != nil {
			a.Log.Warn("sign-in refused: too many attempts", zap.String("source", source(r)))
		}
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		a.Render(w, r, http.StatusTooManyRequests, "signin", "Sign in", SignInData{User: id, Next: next,
			Error: fmt.Sprintf("Too many sign-in attempts. Wait %d seconds, then try again.", secs)})
		return
	}
	var acc Account
	refusal := "Unknown user or wrong password."
	ok := false
	if a.SignIn != nil {
		if got, msg := a.SignIn(r); got != nil {
			acc, ok = *got, true
		} else {
			refusal = msg
		}
	} else {
		var known bool
		acc, known = a.Accounts[id]
		ok = passwordMatches(pw, acc.PasswordHash) && known
	}
	if !ok {
		if a.Log != nil {
			a.Log.Info("sign-in refused")
		}
		a.Render(w, r, http.StatusUnauthorized, "signin", "Sign in", SignInData{User: id, Next: next, Error: refusal})
		return
	}
	if _, err := a.startSession(w, r, acc.ID); err != nil {
		a.fail(w, r, err)
		return
	}
	http.SetCookie(w, a.cookie("nr_csrf", "", -1))
	if a.OnSignIn != nil {
		if err := a.OnSignIn(r.Context(), acc.ID); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (a *App) signOut(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	if st.user != nil {
		if err := a.Sessions.DeleteSession(r.Context(), st.session.Key); err != nil {
			a.fail(w, r, err)
			return
		}
		if a.OnSignOut != nil {
			if err := a.OnSignOut(r.Context(), st.user.ID); err != nil {
				a.fail(w, r, err)
				return
			}
		}
	}
	http.SetCookie(w, a.cookie(sessionCookie, "", -1))
	a.Flash(w, "You are signed out.")
	http.Redirect(w, r, a.Path("/signin"), http.StatusSeeOther)
}

// fail answers 500 for an error of the application's store.
func (a *App) fail(w http.ResponseWriter, r *http.Request, err error) {
	if a.Log != nil {
		a.Log.Error("request failed", zap.String("path", r.URL.Path), zap.Error(err))
	}
	a.Error(w, r, http.StatusInternalServerError, "Something went wrong; nothing was changed. Try again.")
}

// Fail answers 500 for an error of the application's store, and logs it.
func (a *App) Fail(w http.ResponseWriter, r *http.Request, err error) { a.fail(w, r, err) }

// safeNext keeps a redirect target on this site, under the application.
func (a *App) safeNext(next string) string {
	if !strings.HasPrefix(next, a.Path("/")) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return a.Path("/")
	}
	return next
}
