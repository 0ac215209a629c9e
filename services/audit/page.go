package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/auth"
)

// The auditors' page: GET /ui/audit shows the report of the verified log
// (what `noticerelay audit report` writes) to an auditor signed in with
// one of its tokens. A browser cannot send a bearer header, so the token
// is typed once into a form and the page keeps a session cookie.
const (
	pagePath    = "/ui/audit"
	signInPath  = pagePath + "/sign-in"
	signOutPath = pagePath + "/sign-out"
	scriptPath  = pagePath + "/live.js"
	// SessionTTL is how long an auditor stays signed in.
	SessionTTL = 8 * time.Hour
	// reportMaxAge is how long a built report is shown before the log is
	// read again while no new checkpoint was published.
	reportMaxAge  = 30 * time.Second
	sessionCookie = "nr_audit_session"
	csrfCookie    = "nr_audit_csrf"
	csrfField     = "csrf"
)

// liveScript keeps the latest signed checkpoint on the page up to date.
// The page is complete without it.
const liveScript = `"use strict";
(() => {
  const pre = document.getElementById("live-checkpoint");
  if (!pre) return;
  const refresh = async () => {
    try {
      const r = await fetch(pre.dataset.src, {cache: "no-store"});
      if (r.ok) pre.textContent = await r.text();
    } catch (e) {}
  };
  refresh();
  setInterval(refresh, 5000);
})();
`

var signInPage = template.Must(template.New("sign-in").Funcs(template.FuncMap{
	"css": func() template.CSS { return template.CSS(auditlog.ReportCSS) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: audit report</title>
<style>{{css}}</style>
</head>
<body>
<header><h1>Audit report of the notice relay</h1>
<p class="sub">For auditors: sign in with your auditor token (the one you send as a bearer token to <code>/v1/audit/proof</code>).</p></header>
<main>
<section aria-labelledby="h-signin">
<h2 id="h-signin">Sign in</h2>
{{- with .Error}}<p class="verdict broken" role="alert" id="sign-in-error">{{.}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="{{.Field}}" value="{{.CSRF}}">
<p><label for="token">Auditor token</label><br>
<input id="token" name="token" type="password" autocomplete="off" required size="48"{{with .Error}} aria-invalid="true" aria-describedby="sign-in-error"{{end}}></p>
<p><button type="submit">Sign in</button></p>
</form>
</section>
</main>
</body>
</html>
`))

// session is a signed-in auditor. Sessions are kept in memory, under the
// SHA-256 of their cookie: a restart signs everyone out.
type session struct {
	auditor string
	csrf    string
	expires time.Time
}

// pages serves the auditors' page.
type pages struct {
	s        *Service
	mu       sync.Mutex
	sessions map[string]session
	// buildMu lets one request at a time build a report.
	buildMu sync.Mutex
	// The last report built, and the checkpoint it was built for.
	built     *auditlog.Report
	builtSeq  uint64
	builtTime time.Time
}

func (s *Service) registerPages() {
	p := &pages{s: s, sessions: map[string]session{}}
	s.env.Mux.HandleFunc("GET "+pagePath, p.secured(p.report))
	s.env.Mux.HandleFunc("GET "+signInPath, p.secured(p.signInForm))
	s.env.Mux.HandleFunc("POST "+signInPath, p.secured(p.signIn))
	s.env.Mux.HandleFunc("POST "+signOutPath, p.secured(p.signOut))
	s.env.Mux.HandleFunc("GET "+scriptPath, p.secured(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write([]byte(liveScript))
	}))
}

var crossOrigin = http.NewCrossOriginProtection()

// secured adds the headers every page gets, and refuses cross-origin
// form posts.
func (p *pages) secured(h http.HandlerFunc) http.HandlerFunc {
	protected := crossOrigin.Handler(h)
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src "+auditlog.ReportCSSHash+
			"; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		protected.ServeHTTP(w, r)
	}
}

func (p *pages) cookie(r *http.Request, name, value string, ttl time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: pagePath, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(ttl.Seconds())}
	if ttl < 0 {
		c.MaxAge = -1
	}
	return c
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func digest(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// session returns the request's session, if it has a live one.
func (p *pages) session(r *http.Request) (string, session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", session{}, false
	}
	key := digest(c.Value)
	now := p.s.env.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.sessions { // forget expired sessions
		if now.After(s.expires) {
			delete(p.sessions, k)
		}
	}
	s, ok := p.sessions[key]
	return key, s, ok
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// signInForm shows the sign-in form; its CSRF token is bound to a cookie.
func (p *pages) signInForm(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := p.session(r); ok {
		http.Redirect(w, r, pagePath, http.StatusSeeOther)
		return
	}
	p.renderSignIn(w, r, http.StatusOK, "")
}

func (p *pages) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken()
	http.SetCookie(w, p.cookie(r, csrfCookie, token, time.Hour))
	var b bytes.Buffer
	if err := signInPage.Execute(&b, map[string]string{"Action": signInPath, "Field": csrfField, "CSRF": token, "Error": msg}); err != nil {
		p.s.env.Log.Error("audit: sign-in page", zap.Error(err))
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// signIn takes an auditor's token and starts a session.
func (p *pages) signIn(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(csrfCookie)
	if err != nil || !sameToken(r.PostFormValue(csrfField), c.Value) {
		p.renderSignIn(w, r, http.StatusForbidden, "The form was refused: its security token is missing or stale. Try again.")
		return
	}
	who, ok := p.s.env.Auth.Lookup(r.PostFormValue("token"))
	if !ok || who.Role != auth.Auditor {
		p.s.env.Log.Info("audit: page sign-in refused")
		p.renderSignIn(w, r, http.StatusUnauthorized, "This is not an auditor token of this relay.")
		return
	}
	value := randomToken()
	p.mu.Lock()
	p.sessions[digest(value)] = session{auditor: who.ID, csrf: randomToken(), expires: p.s.env.Now().Add(SessionTTL)}
	p.mu.Unlock()
	p.s.env.Log.Info("audit: auditor signed in to the page", zap.String("auditor", who.ID))
	http.SetCookie(w, p.cookie(r, sessionCookie, value, SessionTTL))
	http.SetCookie(w, p.cookie(r, csrfCookie, "", -1))
	http.Redirect(w, r, pagePath, http.StatusSeeOther)
}

// signOut ends the session.
func (p *pages) signOut(w http.ResponseWriter, r *http.Request) {
	key, s, ok := p.session(r)
	if !ok || !sameToken(r.PostFormValue(csrfField), s.csrf) {
		http.Error(w, "the form was refused: its security token is missing or stale", http.StatusForbidden)
		return
	}
	p.mu.Lock()
	delete(p.sessions, key)
	p.mu.Unlock()
	http.SetCookie(w, p.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, signInPath, http.StatusSeeOther)
}

// report shows the report of the verified log to a signed-in auditor.
func (p *pages) report(w http.ResponseWriter, r *http.Request) {
	_, s, ok := p.session(r)
	if !ok {
		http.Redirect(w, r, signInPath, http.StatusSeeOther)
		return
	}
	if p.s.verifier == nil {
		http.Error(w, "the relay has no audit keys configured: there is no signed log to report on", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	rep, err := p.latestReport(ctx)
	if err != nil {
		p.s.env.Log.Error("audit: building the report", zap.Error(err))
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the audit log could not be read; try again shortly", http.StatusServiceUnavailable)
		return
	}
	var b bytes.Buffer
	live := &auditlog.Live{Auditor: s.auditor, SignOut: signOutPath, CSRFField: csrfField, CSRF: s.csrf,
		Script: scriptPath, Checkpoint: "/v1/audit/checkpoint"}
	if err := rep.WriteHTML(&b, live); err != nil {
		p.s.env.Log.Error("audit: writing the report", zap.Error(err))
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// latestReport builds the report of the whole log, or returns the last one
// while no checkpoint was published since and it is recent.
func (p *pages) latestReport(ctx context.Context) (*auditlog.Report, error) {
	p.buildMu.Lock()
	defer p.buildMu.Unlock()
	latest, err := auditlog.LatestCheckpoint(ctx, p.s.env.JS)
	if err != nil {
		return nil, err
	}
	var seq uint64
	if latest != nil {
		seq = latest.Seq
	}
	now := p.s.env.Now()
	if p.built != nil && p.builtSeq == seq && now.Sub(p.builtTime) < reportMaxAge {
		return p.built, nil
	}
	cps, err := auditlog.ReadCheckpoints(ctx, p.s.env.JS)
	if err != nil {
		return nil, err
	}
	rep, err := auditlog.BuildReport(ctx, auditlog.StreamLeaves{JS: p.s.env.JS}, cps, auditlog.ReportOptions{Now: now,
		Verify: auditlog.VerifyOptions{Verifier: p.s.verifier},
		Replay: auditlog.ReplayOptions{At: now, UrgentDeadline: time.Duration(p.s.env.Config.Deliveries.UrgentDeadline)}})
	if err != nil {
		return nil, err
	}
	p.built, p.builtSeq, p.builtTime = rep, seq, now
	return rep, nil
}
