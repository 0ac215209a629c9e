package station_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	store "github.com/noticerelay/noticerelay/pkg/station"
)

// client is an analyst's HTTP client, signed in.
func (e *env) client(t *testing.T, user, password string) *http.Client {
	t.Helper()
	c, status, body := e.trySignIn(t, user, password)
	if status != http.StatusOK || !strings.Contains(body, `class="signout"`) {
		t.Fatalf("signing in as %s: HTTP %d", user, status)
	}
	return c
}

// trySignIn submits the sign-in form with a new client and returns the
// client, the status and the page of the answer.
func (e *env) trySignIn(t *testing.T, user, password string) (*http.Client, int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page := e.get(t, c, "/signin")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", page)
	}
	resp, err := c.PostForm(e.url+"/signin", url.Values{"csrf": {m[1]}, "user": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return c, resp.StatusCode, string(body)
}

func (e *env) get(t *testing.T, c *http.Client, path string) string {
	t.Helper()
	resp, err := c.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func (e *env) stored(t *testing.T) int {
	t.Helper()
	rows, err := e.station.Store().Inbox(context.Background(), store.Filter{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// While the relay is down the station keeps serving what it has and says
// since when the relay is unreachable; afterwards it catches up.
func TestStationThroughRelayOutage(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, "duty1", analystPassword)
	e.relay.Submit("examplenet", relaytest.Notice("OUT-1", false, "", "DE", ""))
	relaytest.Eventually(t, 20*time.Second, "the first notice stored", func() bool { return e.stored(t) == 1 })

	e.relay.Stop()
	relaytest.Eventually(t, 20*time.Second, "the outage noticed", func() bool {
		st, err := e.station.Store().Relay(context.Background())
		return err == nil && !st.UnreachableSince.IsZero()
	})
	page := e.get(t, c, "/")
	if !strings.Contains(page, "The relay has not been reachable since") || !strings.Contains(page, "OUT-1") {
		t.Fatalf("the inbox during the outage:\n%s", page)
	}

	e.relay.Restart()
	e.relay.Submit("examplenet", relaytest.Notice("OUT-2", true, "", "DE", ""))
	relaytest.Eventually(t, 40*time.Second, "the catch-up", func() bool { return e.stored(t) == 2 })
	relaytest.Eventually(t, 20*time.Second, "the alert gone", func() bool {
		return !strings.Contains(e.get(t, c, "/"), "has not been reachable")
	})
	if page := e.get(t, c, "/"); !strings.Contains(page, "OUT-2") {
		t.Fatalf("the inbox after the outage:\n%s", page)
	}
}

// Sign-in refuses a wrong password and an unknown user alike.
func TestSignInRefusals(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(e.get(t, c, "/signin"))
	for _, tc := range []struct{ user, password string }{{"duty1", "wrong password"}, {"nobody", analystPassword}} {
		resp, err := c.PostForm(e.url+"/signin", url.Values{"csrf": {m[1]}, "user": {tc.user}, "password": {tc.password}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Unknown user or wrong password.") {
			t.Fatalf("%s/%s: HTTP %d", tc.user, tc.password, resp.StatusCode)
		}
	}
	if page := e.get(t, c, "/"); !strings.Contains(page, `id="password"`) {
		t.Fatal("the inbox answered without a sign-in")
	}
}

// The relay's inbox answer names the token's authority; a station whose
// database holds another authority's notices stores and acknowledges
// nothing of this one's, and says why.
func TestStationRefusesAnotherAuthoritysToken(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetAuthority(context.Background(), store.Authority{ID: "fr-police", Name: "Police nationale"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	e := newEnvWith(t, nil, func(y string) string {
		return regexp.MustCompile(`(?m)^data: .*$`).ReplaceAllString(y, "data: "+data)
	})
	var in struct {
		Authority struct{ ID, Name, Country string } `json:"authority"`
	}
	if resp := e.relay.Do("GET", "/v1/inbox?max=1", "authority:"+authority, nil); resp.Status != 200 || resp.JSON(&in) != nil ||
		in.Authority.ID != authority || in.Authority.Name != authorityName || in.Authority.Country != "DE" {
		t.Fatalf("the inbox answer does not name its authority: %s", resp)
	}
	id := e.relay.Submit("examplenet", relaytest.Notice("OTHER-1", false, "", "DE", ""))
	relaytest.Eventually(t, 20*time.Second, "the refusal recorded", func() bool {
		s, err := e.station.Store().Relay(context.Background())
		return err == nil && strings.Contains(s.LastError, "another authority") && strings.Contains(s.LastError, "fr-police")
	})
	if n := e.stored(t); n != 0 {
		t.Fatalf("%d notices of de-bka stored in fr-police's database", n)
	}
	var status struct {
		Recipients []struct{ Authority, Status string } `json:"recipients"`
	}
	if resp := e.relay.Do("GET", "/v1/notices/"+id, "platform:examplenet", nil); resp.Status != 200 || resp.JSON(&status) != nil {
		t.Fatalf("status: %s", resp)
	}
	for _, r := range status.Recipients {
		if r.Authority == authority && r.Status == "acknowledged" {
			t.Fatal("the station acknowledged a delivery it did not store")
		}
	}
	s, err := e.station.Store().Relay(context.Background())
	if err != nil || s.Authority.ID != "fr-police" {
		t.Fatalf("the database's authority changed: %+v %v", s.Authority, err)
	}
}
