package relay_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/services/audit"
)

// browser starts Chromium for the test, with a deadline.
func browser(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(relaytest.Browser(t), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// An auditor signs in at /ui/audit with its token and reads the report of
// the run, with the numbers the run produced; the checkpoint on the page
// follows the log without a reload. Other tokens, and forms without their
// CSRF token, are refused.
func TestAuditPageInBrowser(t *testing.T) {
	r, _, want := auditedRun(t)
	ctx := browser(t)
	page := r.URL + "/ui/audit"

	// Each attempt starts from a fresh sign-in form (/ui/audit sends there),
	// so that the wait below sees the page the form's answer loaded.
	signIn := func(token string) string {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Submit(chromedp.ID("token")),
			chromedp.WaitReady(chromedp.CSS(".report, #signin-error")),
		); err != nil {
			t.Fatal(err)
		}
		body, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	shot := func(name string) { relaytest.Screenshot(t, ctx, name) }
	for _, bad := range []string{"not-a-token", r.Tokens["platform:examplenet"], r.Tokens["authority:de-bka"]} {
		if body := signIn(bad); !strings.Contains(body, "not an auditor token") || strings.Contains(body, "data-intact") {
			t.Fatalf("signed in with %q:\n%.400s", bad, body)
		}
	}
	shot("audit-signin.png")
	body := signIn(auditorToken)
	if !strings.Contains(body, `data-intact="true"`) {
		t.Fatalf("after sign-in:\n%.2000s", body)
	}
	checkRunReport(t, []byte(body), want)

	// The page is pkg/web's layout (signed in as the auditor) with the
	// report's own style sheet, both allowed by its Content-Security-Policy.
	if !strings.Contains(body, `class="signout"`) || !strings.Contains(body, "dsc-ie") {
		t.Errorf("no sign-out form or auditor in the page's header:\n%.1500s", body)
	}
	styled, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector(".top")).backgroundColor + " " + getComputedStyle(document.getElementById("verification")).borderTopLeftRadius`))
	if err != nil || styled != "rgb(16, 42, 67) 8px" {
		t.Errorf("the style sheets did not apply (%v): %q", err, styled)
	}
	shot("audit-report.png")

	// The live checkpoint follows the log: a new notice makes the log grow,
	// and the checkpoint shown changes without a reload.
	before, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("live-checkpoint")))
	if err != nil {
		t.Fatal(err)
	}
	r.Submit("examplenet", relaytest.Notice("RUN-6", false, "", "AT", ""))
	relaytest.Eventually(t, 30*time.Second, "the live checkpoint to change", func() bool {
		now, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("live-checkpoint")))
		if err != nil {
			t.Fatal(err)
		}
		return now != before && strings.Count(now, "\n") >= 3
	})

	// Sign out: the page asks for the token again.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form.signout[action="/ui/audit/signout"] button`)),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("token")),
	); err != nil {
		t.Fatal(err)
	}
	url1, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(url1, "/ui/audit/signin?next=") {
		t.Errorf("after sign-out: %s", url1)
	}
}

// Without a browser: the page's forms need their CSRF token, the report
// needs a live session, and the cookies are HttpOnly and SameSite=Strict.
func TestAuditPageRefusals(t *testing.T) {
	var ahead atomic.Int64 // how far the relay's clock is ahead
	r, _ := startAudited(t, relaytest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path string, form url.Values, cookies ...*http.Cookie) *http.Response {
		req, _ := http.NewRequest(method, r.URL+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	get := func(path string, cookies ...*http.Cookie) *http.Response { return send("GET", path, nil, cookies...) }
	post := func(path string, form url.Values, cookies ...*http.Cookie) *http.Response {
		return send("POST", path, form, cookies...)
	}
	toSignIn := func(resp *http.Response) bool {
		return resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/ui/audit/signin?next=")
	}
	if resp := get("/ui/audit"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/audit/" {
		t.Fatalf("/ui/audit: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get("/ui/audit/"); !toSignIn(resp) {
		t.Fatalf("without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get("/ui/audit/", &http.Cookie{Name: "nr_session", Value: "forged"}); !toSignIn(resp) {
		t.Fatalf("with a forged session: %d", resp.StatusCode)
	}
	form := get("/ui/audit/signin")
	var csrf *http.Cookie
	for _, c := range form.Cookies() {
		if c.Name == "nr_csrf" {
			csrf = c
		}
	}
	if csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.Path != "/ui/audit" {
		t.Fatalf("CSRF cookie %+v", csrf)
	}
	if csp := form.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	// The right token without the form's CSRF token, or with another one.
	for _, f := range []url.Values{{"token": {auditorToken}}, {"token": {auditorToken}, "csrf": {"x" + csrf.Value}}} {
		if resp := post("/ui/audit/signin", f, csrf); resp.StatusCode != http.StatusForbidden || sessionOf(resp) != nil {
			t.Errorf("sign-in without its CSRF token: %d", resp.StatusCode)
		}
	}
	// Tokens of other roles, or a user and password, with the CSRF token.
	for _, f := range []url.Values{
		{"token": {r.Tokens["platform:examplenet"]}},
		{"token": {r.Tokens["authority:de-bka"]}},
		{"user": {"dsc-ie"}, "password": {auditorToken}},
	} {
		f.Set("csrf", csrf.Value)
		if resp := post("/ui/audit/signin", f, csrf); resp.StatusCode != http.StatusUnauthorized || sessionOf(resp) != nil {
			t.Errorf("%v: %d", f, resp.StatusCode)
		}
	}
	resp := post("/ui/audit/signin", url.Values{"token": {auditorToken}, "csrf": {csrf.Value}}, csrf)
	s := sessionOf(resp)
	if resp.StatusCode != http.StatusSeeOther || s == nil || !s.HttpOnly || s.SameSite != http.SameSiteStrictMode || s.MaxAge <= 0 ||
		s.Path != "/ui/audit" || s.Secure {
		t.Fatalf("sign-in: %d %+v", resp.StatusCode, s)
	}
	relaytest.Eventually(t, wait, "the report", func() bool { return get("/ui/audit/", s).StatusCode == http.StatusOK })
	// Sign-out without the session's CSRF token is refused.
	if resp := post("/ui/audit/signout", url.Values{}, s); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without CSRF: %d", resp.StatusCode)
	}
	if get("/ui/audit/", s).StatusCode != http.StatusOK {
		t.Error("the session ended without a valid sign-out")
	}
	// Past its expiry, the session is sent to sign in.
	ahead.Store(int64(audit.SessionTTL + time.Minute))
	if resp := get("/ui/audit/", s); !toSignIn(resp) {
		t.Errorf("an expired session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func sessionOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "nr_session" && c.Value != "" {
			return c
		}
	}
	return nil
}
