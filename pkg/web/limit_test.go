package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// Sign-in attempts are limited per user name and per source address: past
// the burst even the right password is refused (429 with Retry-After) until
// the bucket refills, so a password cannot be guessed by trying.
func TestSignInRateLimit(t *testing.T) {
	const password = "right password 123"
	hash, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	accounts := map[string]Account{}
	for _, u := range []string{"duty1", "duty2", "duty3", "duty4"} {
		accounts[u] = Account{ID: u, Name: u, Role: "analyst", PasswordHash: hash}
	}
	a := &App{Site: "Test", Accounts: accounts, Sessions: &MemorySessions{}, SessionTTL: time.Hour,
		SignInLimit: SignInLimit{PerSource: Rate{Burst: 5, Every: time.Minute}, PerUser: Rate{Burst: 3, Every: time.Minute}},
		Now:         func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	if err := a.Parse(fstest.MapFS{}, nil); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.Require(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "inbox") }))
	srv := httptest.NewServer(a.Handler(mux))
	defer srv.Close()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// try signs in afresh: a new cookie jar and the sign-in form's token.
	try := func(user, pw string) (int, string) {
		t.Helper()
		c.Jar, _ = cookiejar.New(nil)
		resp, err := c.Get(srv.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("no CSRF token:\n%s", page)
		}
		resp, err = c.PostForm(srv.URL+"/signin", url.Values{"csrf": {string(m[1])}, "user": {user}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	// Per user: three guesses, then not even the right password.
	for i := range 3 {
		if code, _ := try("duty1", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: HTTP %d, want 401", i+1, code)
		}
	}
	if code, after := try("duty1", password); code != http.StatusTooManyRequests || after != "60" {
		t.Fatalf("the right password past the limit: HTTP %d, Retry-After %q; want 429 and 60", code, after)
	}
	advance(time.Minute)
	if code, _ := try("duty1", password); code != http.StatusSeeOther {
		t.Fatalf("the right password a minute later: HTTP %d, want 303", code)
	}
	// Per source: other user names from the same address share its bucket
	// (5, less the 4 attempts taken, plus the one the minute added; the
	// refused attempt took none).
	for _, u := range []string{"duty2", "duty3"} {
		if code, _ := try(u, "guess"); code != http.StatusUnauthorized {
			t.Fatalf("%s: HTTP %d, want 401", u, code)
		}
	}
	if code, _ := try("duty4", password); code != http.StatusTooManyRequests {
		t.Fatalf("a fourth user past the source's limit: HTTP %d, want 429", code)
	}
	advance(time.Minute)
	if code, _ := try("duty4", password); code != http.StatusSeeOther {
		t.Fatalf("after the source's bucket refilled: HTTP %d, want 303", code)
	}
}

// The limiter keeps its maps bounded: buckets with no recent attempt go.
func TestSignInLimiterForgets(t *testing.T) {
	var l signInLimiter
	lim := SignInLimit{PerSource: Rate{Burst: 2, Every: time.Second}, PerUser: Rate{Burst: 2, Every: time.Second}}
	now := time.Now()
	for i := range maxLimited + 10 {
		if wait := l.allow(lim, "src", strconv.Itoa(i), now); wait > 0 {
			now = now.Add(wait)
		}
	}
	if len(l.users) > maxLimited {
		t.Fatalf("%d user buckets kept", len(l.users))
	}
}

// A sign-in that names no user (a token's) is limited per source only:
// sources do not share one bucket of the empty user name.
func TestSignInLimitWithoutUser(t *testing.T) {
	var l signInLimiter
	lim := SignInLimit{PerSource: Rate{Burst: 2, Every: time.Minute}, PerUser: Rate{Burst: 1, Every: time.Minute}}
	now := time.Now()
	for i := range 5 {
		if wait := l.allow(lim, "src"+strconv.Itoa(i), "", now); wait > 0 {
			t.Fatalf("source %d: wait %s", i, wait)
		}
	}
	l.allow(lim, "src0", "", now)
	if wait := l.allow(lim, "src0", "", now); wait == 0 {
		t.Fatal("a source past its burst was let in")
	}
}
