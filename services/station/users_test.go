package station_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// A lead manages the users of the configuration: sees their roles, last
// sign-in and sessions, signs one out everywhere, suspends and reinstates
// them; each change is in the access log. An analyst reaches none of it.
func TestLeadManagesUsers(t *testing.T) {
	e := newEnv(t)
	ctx := relaytest.Browser(t)
	base := e.url

	// duty1 signs in; the users page is not theirs, nor its forms.
	signIn(t, ctx, base, "duty1", analystPassword)
	duty1Cookie := cookie(t, ctx, base, "nr_session")
	if n := js[int](t, ctx, `Array.from(document.querySelectorAll(".top nav a")).filter(a => a.textContent.includes("Users")).length`); n != 0 {
		t.Fatal("an analyst's navigation offers the users page")
	}
	open(t, ctx, base+"/users", "#error-message")
	if got := text(t, ctx, "#error-message"); !strings.Contains(got, "may not see this page") {
		t.Fatalf("an analyst on the users page: %q", got)
	}
	if st := js[int](t, ctx, `fetch("/access-log.csv").then(r => r.status)`); st != http.StatusForbidden {
		t.Fatalf("an analyst exporting the access log: HTTP %d, want 403", st)
	}
	if st := js[int](t, ctx, `fetch("/users/lead/suspend", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "csrf=" + encodeURIComponent(document.querySelector("form.signout input[name=csrf]").value)}).then(r => r.status)`); st != http.StatusForbidden {
		t.Fatalf("an analyst suspending the lead: HTTP %d, want 403", st)
	}

	do(t, ctx, "signing out duty1's browser", clearCookies())
	signIn(t, ctx, base, "lead", leadPassword)
	open(t, ctx, base+"/users", "#users")
	row := text(t, ctx, "#user-duty1")
	for _, want := range []string{"duty1", "Duty officer 1", "analyst", "UTC", "active"} {
		if !strings.Contains(row, want) {
			t.Fatalf("duty1's row lacks %q: %q", want, row)
		}
	}
	if got := text(t, ctx, "#user-duty1 td:nth-child(5)"); got != "1" {
		t.Fatalf("duty1's open sessions: %q, want 1", got)
	}
	if n := js[int](t, ctx, `document.querySelectorAll("#user-lead form").length`); n != 0 || !strings.Contains(text(t, ctx, "#user-lead"), "you") {
		t.Fatal("the lead is offered to suspend themselves")
	}
	screenshot(t, ctx, "station-users.png")

	// Sign duty1 out everywhere: the browser's session is gone.
	submit(t, ctx, "#user-duty1 form[action$='/revoke']")
	flashed(t, ctx, "duty1 is signed out everywhere")
	if got := text(t, ctx, "#user-duty1 td:nth-child(5)"); got != "0" {
		t.Fatalf("duty1's open sessions after revoking: %q", got)
	}
	if e.signedIn(t, duty1Cookie) {
		t.Fatal("duty1's session survived being revoked")
	}

	// Suspend duty1: a session opened before ends, and sign-in is refused.
	c := e.client(t, "duty1", analystPassword)
	open(t, ctx, base+"/users", "#users")
	submit(t, ctx, "#user-duty1 form[action$='/suspend']")
	flashed(t, ctx, "duty1 is suspended")
	if got := strings.ToLower(text(t, ctx, "#user-duty1 .user-status")); !strings.Contains(got, "suspended since") || !strings.Contains(got, "by lead") {
		t.Fatalf("duty1's status: %q", got)
	}
	if page := e.get(t, c, "/"); !strings.Contains(page, `id="password"`) {
		t.Fatal("a session of duty1 outlived the suspension")
	}
	if _, status, page := e.trySignIn(t, "duty1", analystPassword); status != http.StatusUnauthorized || !strings.Contains(page, "suspended") {
		t.Fatalf("a suspended user signing in: HTTP %d", status)
	}

	// Reinstate: duty1 signs in again.
	submit(t, ctx, "#user-duty1 form[action$='/reinstate']")
	flashed(t, ctx, "duty1 may sign in again")
	e.client(t, "duty1", analystPassword)

	// Not on oneself, even by a hand-made form.
	if st := js[int](t, ctx, `fetch("/users/lead/suspend", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "csrf=" + encodeURIComponent(document.querySelector("form.signout input[name=csrf]").value)}).then(r => r.status)`); st != http.StatusConflict {
		t.Fatalf("the lead suspending themselves: HTTP %d, want 409", st)
	}
	open(t, ctx, base+"/access-log", "#access-log")
	log := text(t, ctx, "#access-log")
	for _, want := range []string{"sessions revoke", "user suspend", "user reinstate", "user=duty1"} {
		if !strings.Contains(log, want) {
			t.Fatalf("the access log lacks %q:\n%s", want, log)
		}
	}
}

// cookie returns the value of the station's cookie name in the browser.
func cookie(t *testing.T, ctx context.Context, base, name string) string {
	t.Helper()
	got := get(t, ctx, "the cookies", chromedp.Action[network.GetCookiesResult](func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	}))
	for _, c := range got.Cookies {
		if c.Name == name {
			return c.Value
		}
	}
	t.Fatalf("no cookie %s", name)
	return ""
}

// signedIn reports whether a request with the session cookie value
// reaches the inbox.
func (e *env) signedIn(t *testing.T, value string) bool {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/", nil)
	req.AddCookie(&http.Cookie{Name: "nr_session", Value: value})
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
