package station_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap/zaptest"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/web"
	"github.com/noticerelay/noticerelay/services/station"
)

// The station under test receives for de-bka, whose deliveries the relay
// seals to an age key.
const authority = "de-bka"

// authorityName is de-bka's name in the relay's configuration, which the
// station's pages show.
const authorityName = "Bundeskriminalamt"

// Passwords of the test users.
const (
	analystPassword = "correct horse battery"
	leadPassword    = "lead staple battery horse"
)

var hashes = sync.OnceValue(func() [2]string {
	a, err := web.HashPassword(analystPassword)
	if err != nil {
		panic(err)
	}
	l, err := web.HashPassword(leadPassword)
	if err != nil {
		panic(err)
	}
	return [2]string{a, l}
})

// env is a relay and a station for de-bka.
type env struct {
	t       *testing.T
	relay   *relaytest.Relay
	station *station.Station
	url     string
	cfgYAML string
}

// newEnv starts a relay that seals de-bka's deliveries and a station
// that opens them.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil, nil)
}

// newEnvWith is newEnv with changes to the relay's configuration and to
// the station's (YAML).
func newEnvWith(t *testing.T, relayCfg func(*config.Config), stationCfg func(string) string) *env {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		for i := range c.Authorities {
			if c.Authorities[i].ID == authority {
				c.Authorities[i].AgeRecipient = id.Recipient().String()
				c.Authorities[i].Name = authorityName
			}
		}
		if relayCfg != nil {
			relayCfg(c)
		}
	}})
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authority.agekey")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NR_STATION_TOKEN", r.Tokens["authority:"+authority])
	h := hashes()
	// As the example: no authority field, the relay names it.
	yaml := fmt.Sprintf(`relay: {url: %s, token_env: NR_STATION_TOKEN}
identity: %s
data: %s
http: {listen: 127.0.0.1:0}
users:
  - {id: duty1, name: Duty officer 1, password: %q, role: analyst}
  - {id: lead, name: Team lead, password: %q, role: lead}
`, r.URL, keyFile, filepath.Join(dir, "data"), h[0], h[1])
	if stationCfg != nil {
		yaml = stationCfg(yaml)
	}
	cfg, err := station.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatalf("station configuration: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := station.Start(ctx, station.Options{Config: cfg, Log: zaptest.NewLogger(t), Listener: ln, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("starting the station: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the station: %v", err)
		}
	})
	return &env{t: t, relay: r, station: s, url: "http://" + s.Addr(), cfgYAML: yaml}
}

// do runs browser steps with a deadline, failing the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	relaytest.Do(t, ctx, what, steps...)
}

// waitFor polls a JavaScript condition in the page until it holds.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	relaytest.WaitFor(t, ctx, what, cond)
}

// flashed waits for the page after a form, whose flash says want.
func flashed(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	waitFor(t, ctx, "the flash "+want, `document.querySelector(".flash") && document.querySelector(".flash").textContent.includes(`+strconv.Quote(want)+`)`)
}

// get runs a browser action that yields a value, failing the test on error.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return relaytest.Get(t, ctx, what, a)
}

// text returns the rendered text of the first element matching the CSS
// selector, once there is one. It reads through JavaScript, which always
// sees the current document (a DOM query may hold a node of the page that
// a form's answer just replaced).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	waitFor(t, ctx, sel, "document.querySelector("+strconv.Quote(sel)+")")
	return strings.TrimSpace(js[string](t, ctx, "(document.querySelector("+strconv.Quote(sel)+") || {innerText: ''}).innerText"))
}

// open navigates to url and waits for an element of the page.
func open(t *testing.T, ctx context.Context, url, sel string) {
	t.Helper()
	do(t, ctx, "opening "+url, chromedp.Navigate(url))
	waitFor(t, ctx, sel+" on "+url, "document.querySelector("+strconv.Quote(sel)+")")
}

// set sets the value of a form field, as a choice or typing would.
func set(t *testing.T, ctx context.Context, sel, value string) {
	t.Helper()
	waitFor(t, ctx, sel, "document.querySelector("+strconv.Quote(sel)+")")
	js[bool](t, ctx, "(() => { const e = document.querySelector("+strconv.Quote(sel)+"); e.value = "+strconv.Quote(value)+
		"; e.dispatchEvent(new Event('input')); return true })()")
}

// submit submits a form as its button would.
func submit(t *testing.T, ctx context.Context, form string) {
	t.Helper()
	waitFor(t, ctx, form, "document.querySelector("+strconv.Quote(form)+")")
	js[bool](t, ctx, "(() => { document.querySelector("+strconv.Quote(form)+").requestSubmit(); return true })()")
}

// js evaluates an expression (awaiting a promise) in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return relaytest.JS[T](t, ctx, expr)
}

// signIn signs in through the sign-in form.
func signIn(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	do(t, ctx, "the sign-in page", chromedp.Navigate(base+"/signin"))
	set(t, ctx, "#user", user)
	set(t, ctx, "#password", password)
	submit(t, ctx, "form[action='/signin']")
	waitFor(t, ctx, "signed in as "+user, `document.querySelector("form.signout")`)
}

// setCookie sets a cookie of the station in the browser.
func setCookie(base, name, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{Name: name, Value: value, URL: base})
		return err
	})
}

// clearCookies removes every cookie of the browser.
func clearCookies() chromedp.Action[chromedp.Void] { return relaytest.ClearCookies() }

// screenshot saves a full-page PNG under $NR_SCREENSHOTS, when it is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	relaytest.Screenshot(t, ctx, name)
}
