package audit

import (
	"bytes"
	"context"
	"embed"
	"html"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/noticerelay/noticerelay/pkg/auditlog"
	"github.com/noticerelay/noticerelay/pkg/auth"
	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// The auditors' page: GET /ui/audit/ shows the report of the verified log
// (what `noticerelay audit report` writes) to an auditor signed in with one
// of its tokens. A browser cannot send a bearer header, so the token is
// typed once into pkg/web's sign-in form (the station's and the portal's
// sessions, CSRF protection, headers and layout).
const (
	// Base is the path the page is served under.
	Base = "/ui/audit"
	// SessionTTL is how long an auditor stays signed in.
	SessionTTL = 8 * time.Hour
	// reportMaxAge is how long a built report is shown before the log is
	// read again while no new checkpoint was published.
	reportMaxAge = 30 * time.Second
)

//go:embed templates
var templates embed.FS

// pages serves the auditors' page.
type pages struct {
	s   *Service
	app *web.App
	// buildMu lets one request at a time build a report.
	buildMu sync.Mutex
	// The last report built, and the checkpoint it was built for.
	built     *auditlog.Report
	builtSeq  uint64
	builtTime time.Time
}

// registerPages mounts the page under Base on the relay's listener.
func (s *Service) registerPages() error {
	p := &pages{s: s}
	p.app = &web.App{Base: Base, Product: "noticerelay audit", Site: "Audit of the notice relay",
		Footer:   "the auditors' page of noticerelay · built from the verified audit log, which holds no personal data",
		Accounts: auditorAccounts(s.env.Config), Sessions: &web.MemorySessions{}, SessionTTL: SessionTTL,
		Secure: s.env.Config.HTTP.TLS.Enabled(), Log: s.env.Log, Now: s.env.Now,
		SignIn: p.signIn,
		OnSignIn: func(_ context.Context, user string) error {
			s.env.Log.Info("audit: auditor signed in to the page", zap.String("auditor", user))
			return nil
		},
	}
	sub, _ := fs.Sub(templates, "templates")
	if err := p.app.Parse(sub, nil); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Base+"/{$}", p.app.Require(p.report))
	mux.HandleFunc("GET "+Base+"/report.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, _ = w.Write([]byte(auditlog.ReportCSS))
	})
	// The checkpoint is public (GET /v1/audit/checkpoint): no session needed.
	mux.HandleFunc("GET "+Base+"/checkpoint", p.liveCheckpoint)
	s.env.Mux.Handle(Base+"/", p.app.Handler(mux))
	s.env.Mux.Handle("GET "+Base, http.RedirectHandler(Base+"/", http.StatusSeeOther))
	return nil
}

// auditorAccounts are the accounts of the configured auditors: they sign in
// with a token, never a password.
func auditorAccounts(c *config.Config) map[string]web.Account {
	out := map[string]web.Account{}
	for _, a := range c.Auditors {
		out[a.ID] = web.Account{ID: a.ID, Name: a.ID, Role: "auditor"}
	}
	return out
}

// signIn takes an auditor's token, and nothing else.
func (p *pages) signIn(r *http.Request) (*web.Account, string) {
	who, ok := p.s.env.Auth.Lookup(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok || who.Role != auth.Auditor {
		return nil, "This is not an auditor token of this relay."
	}
	acc, ok := p.app.Accounts[who.ID]
	if !ok {
		return nil, "This is not an auditor token of this relay."
	}
	return &acc, ""
}

// reportData is what the report page shows: the report, written by
// auditlog.
type reportData struct {
	Body template.HTML
}

// report shows the report of the verified log to a signed-in auditor.
func (p *pages) report(w http.ResponseWriter, r *http.Request) {
	if p.s.verifier == nil {
		p.app.Error(w, r, http.StatusServiceUnavailable, "The relay has no audit keys configured: there is no signed log to report on.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	rep, err := p.latestReport(ctx)
	if err != nil {
		p.s.env.Log.Error("audit: building the report", zap.Error(err))
		w.Header().Set("Retry-After", "5")
		p.app.Error(w, r, http.StatusServiceUnavailable, "The audit log could not be read; try again shortly.")
		return
	}
	var b bytes.Buffer
	if err := rep.WriteBody(&b, &auditlog.Live{Checkpoint: Base + "/checkpoint"}); err != nil {
		p.app.Fail(w, r, err)
		return
	}
	// The body is auditlog's html/template output: escaped there.
	p.app.Render(w, r, http.StatusOK, "report", "Audit report", reportData{Body: template.HTML(b.String())}) //nolint:gosec
}

// liveCheckpoint answers the page's live part: the latest signed checkpoint
// (HTML-escaped), or 204 while it is the one the page shows (?since=seq).
func (p *pages) liveCheckpoint(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	sc, err := auditlog.LatestCheckpoint(ctx, p.s.env.JS)
	if err != nil || sc == nil {
		w.WriteHeader(http.StatusNoContent) // the page keeps what it shows
		return
	}
	seq := strconv.FormatUint(sc.Seq, 10)
	if r.URL.Query().Get("since") == seq {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Live-Version", seq)
	_, _ = w.Write([]byte(html.EscapeString(string(sc.Note))))
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
