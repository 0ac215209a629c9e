package station_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// urgentNotice is an urgent notice for DE (suspect) and RO (victim), with
// what an analyst needs to read: an IP address with port and time, a contact.
func urgentNotice(ref string) map[string]any {
	n := relaytest.Notice(ref, true, "DE", "DE", "RO")
	n["urgency_reason"] = "The suspect arranged to meet the victim tonight."
	n["suspicion"] = "Recruiter offers a minor a job abroad; travel booked for tonight."
	n["suspects"] = []map[string]any{{"country": "DE", "account_id": "u-991", "username": "jobs4you",
		"ip_addresses": []map[string]any{{"ip": "203.0.113.7", "port": 50312, "seen_at": "2026-11-20T13:58:11Z", "event": "login"}}}}
	n["contact"] = map[string]any{"name": "Trust & Safety duty desk", "email": "lea@example.net", "phone": "+353 1 555 0100"}
	n["content"] = []map[string]any{{"url": "https://examplenet.example/chat/8812734/messages?from=2026-11-20T13:00:00Z&to=2026-11-20T14:00:00Z",
		"type": "chat", "published_at": "2026-11-20T13:58:40Z", "sha256": strings.Repeat("ab", 32)}}
	n["related_references"] = []string{"REF-EARLIER-7"}
	n["prior_reports"] = []map[string]any{{"recipient": "NCMEC", "id": "CT-123456"}}
	return n
}

// TestStationInBrowser walks an analyst through the station in Chromium:
// an urgent sealed notice arrives at the top, is opened, read decrypted,
// triaged, annotated and exported; a withdrawal marks its notice; the lead
// reads the access log; sessions and forms refuse what they must.
func TestStationInBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := relaytest.Browser(t)
	base := e.url

	// A normal notice first, so that the urgent one has to jump it.
	normalID := e.relay.Submit("examplenet", relaytest.Notice("REF-NORMAL-1", false, "", "DE", ""))
	signIn(t, ctx, base, "duty1", analystPassword)
	firstRow := func() string {
		open(t, ctx, base+"/", "#urgent-unopened")
		rows := js[int](t, ctx, `document.querySelectorAll("table.inbox tbody tr").length`)
		if rows == 0 {
			return ""
		}
		return text(t, ctx, "table.inbox tbody tr:first-child")
	}
	relaytest.Eventually(t, 20*time.Second, "the normal notice in the inbox", func() bool {
		return strings.Contains(firstRow(), "REF-NORMAL-1")
	})
	// The configuration names no authority (as the example): the
	// relay's inbox answer does, and every page shows it.
	if got, want := text(t, ctx, ".top .authority"), authorityName+" ("+authority+")"; got != want {
		t.Fatalf("the page names %q, want %q", got, want)
	}
	if got := text(t, ctx, "footer"); !strings.HasPrefix(got, authorityName+" ("+authority+")") {
		t.Fatalf("the footer: %q", got)
	}
	if got := text(t, ctx, "#urgent-unopened"); !strings.HasPrefix(got, "0 urgent") {
		t.Fatalf("urgent count before the urgent notice: %q", got)
	}

	urgentID := e.relay.Submit("examplenet", urgentNotice("REF-URGENT-1"))
	relaytest.Eventually(t, 20*time.Second, "the urgent notice at the top", func() bool {
		return strings.Contains(firstRow(), "REF-URGENT-1")
	})
	if cls := js[string](t, ctx, `document.querySelector("table.inbox tbody tr:first-child").className`); !strings.Contains(cls, "urgent") || !strings.Contains(cls, "unread") {
		t.Fatalf("the urgent row is not marked urgent and unread: class %q", cls)
	}
	if got := text(t, ctx, "#urgent-unopened"); !strings.HasPrefix(got, "1 urgent") {
		t.Fatalf("urgent count: %q", got)
	}
	if got := text(t, ctx, ".top nav .badge"); got != "1" {
		t.Fatalf("the navigation's urgent badge says %q, want 1", got)
	}
	if got := js[int](t, ctx, `document.querySelectorAll("table.inbox tbody tr").length`); got != 2 {
		t.Fatalf("the inbox shows %d rows, want 2", got)
	}
	screenshot(t, ctx, "station-inbox.png")

	// Open it: the fields arrive decrypted (the relay sealed them to de-bka's key).
	js[bool](t, ctx, `(() => { document.querySelector("table.inbox tbody tr:first-child a").click(); return true })()`)
	waitFor(t, ctx, "the notice page", `document.querySelector("#suspicion")`)
	if got := text(t, ctx, "#suspicion"); got != "Recruiter offers a minor a job abroad; travel booked for tonight." {
		t.Fatalf("suspicion: %q", got)
	}
	ips := text(t, ctx, ".suspect table.ips")
	for _, want := range []string{"203.0.113.7", "50312", "2026-11-20T13:58:11Z", "login"} {
		if !strings.Contains(ips, want) {
			t.Fatalf("the suspect's IP table lacks %q: %q", want, ips)
		}
	}
	for sel, wants := range map[string][]string{
		".victim":        {"RO", "Minor", "yes"},
		"#locations":     {"DE", "meeting point"},
		"#content":       {"examplenet.example/chat/8812734", "chat", "2026-11-20T13:58:40Z", strings.Repeat("ab", 32)},
		"#contact":       {"Trust & Safety duty desk", "lea@example.net", "+353 1 555 0100"},
		"#related":       {"REF-EARLIER-7"},
		"#prior-reports": {"NCMEC", "CT-123456"},
		".banner-urgent": {"meet the victim tonight"},
		"#summary":       {"human trafficking", "examplenet", "REF-URGENT-1", "DE, RO"},
	} {
		got := text(t, ctx, sel)
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Fatalf("%s lacks %q: %q", sel, want, got)
			}
		}
	}
	if got := text(t, ctx, "#grounds"); !strings.Contains(got, "suspect") || !strings.Contains(got, "declared") {
		t.Fatalf("grounds: %q", got)
	}
	if got := text(t, ctx, "#co-recipients"); !strings.Contains(got, "ro-police") {
		t.Fatalf("co-recipients: %q", got)
	}
	if !e.sealed(t, urgentID) {
		t.Fatal("the urgent notice did not arrive sealed: the test would not show decryption")
	}

	// The platform adds a screenshot of the chat: it appears in the page,
	// decrypted by the station when shown.
	e.upload(t, urgentID, "chat.png", "image/png", chatPNG(t))
	relaytest.Eventually(t, 40*time.Second, "the screenshot in the notice page", func() bool {
		open(t, ctx, base+"/notices/"+urgentID, "#suspicion")
		return js[bool](t, ctx, `(() => { const i = document.querySelector("img.evidence"); return !!i && i.complete && i.naturalWidth > 0 })()`)
	})

	// Triage: forwarded needs a destination.
	set(t, ctx, "#state", "forwarded")
	submit(t, ctx, "#triage-form")
	waitFor(t, ctx, "the form's error", `document.querySelector("#form-error")`)
	if got := text(t, ctx, "#form-error"); !strings.Contains(got, "destination") {
		t.Fatalf("error without destination: %q", got)
	}
	set(t, ctx, "#state", "forwarded")
	set(t, ctx, "#destination", "LKA Berlin, unit 42")
	set(t, ctx, "#assignee", "duty1")
	submit(t, ctx, "#triage-form")
	flashed(t, ctx, "now forwarded")
	if got := text(t, ctx, "#triage-state"); !strings.Contains(got, "forwarded") || !strings.Contains(got, "LKA Berlin, unit 42") || !strings.Contains(got, "duty1") {
		t.Fatalf("triage after saving: %q", got)
	}
	set(t, ctx, "#note", "Called LKA duty desk.")
	submit(t, ctx, "#note-form")
	flashed(t, ctx, "Note added")

	// A request for information goes to the platform through the relay.
	set(t, ctx, "#kind", "request_information")
	set(t, ctx, "#text", "Please send the subscriber data of u-991.")
	submit(t, ctx, "#message-form")
	flashed(t, ctx, "Sent to the platform")
	if got := text(t, ctx, "#thread .message"); !strings.Contains(strings.ToLower(got), "sent") || !strings.Contains(got, "subscriber data of u-991") {
		t.Fatalf("the sent message: %q", got)
	}
	// The platform reads it and answers; the thread shows the answer
	// without a reload of the page.
	var thread struct {
		Messages []struct{ ID, From, To, Kind, Text string } `json:"messages"`
	}
	if resp := e.relay.Do("GET", "/v1/notices/"+urgentID+"/messages", "platform:examplenet", nil); resp.Status != 200 || resp.JSON(&thread) != nil ||
		len(thread.Messages) != 1 || thread.Messages[0].From != authority || thread.Messages[0].Kind != "request_information" ||
		thread.Messages[0].Text != "Please send the subscriber data of u-991." {
		t.Fatalf("the platform's view of the thread: %s", resp)
	}
	js[bool](t, ctx, `(() => { window.notReloaded = true; return true })()`)
	if resp := e.relay.Do("POST", "/v1/notices/"+urgentID+"/messages", "platform:examplenet", map[string]any{"to": authority,
		"text":        "Subscriber data of u-991: registered 2026-10-02 from 203.0.113.7; e-mail jobs4you@example.org.",
		"in_reply_to": thread.Messages[0].ID}); resp.Status != 201 {
		t.Fatalf("the platform's answer: %s", resp)
	}
	waitFor(t, ctx, "the platform's answer in the thread", `document.querySelector("#thread").innerText.includes("registered 2026-10-02")`)
	if !js[bool](t, ctx, `window.notReloaded === true`) {
		t.Fatal("the page reloaded to show the answer")
	}
	if got := text(t, ctx, "#thread .message.in"); !strings.Contains(got, "From the platform") || !strings.Contains(got, "In reply to the request information by duty1") {
		t.Fatalf("the answer: %q", got)
	}
	screenshot(t, ctx, "station-notice.png")

	// A tablet in portrait, 768 px wide: the inbox and the notice fit,
	// and are as keyboard-accessible as on the laptop.
	readable(t, ctx, base+"/", "#urgent-unopened", "")
	do(t, ctx, "a tablet's screen", chromedp.EmulateViewport(768, 1024))
	readable(t, ctx, base+"/", "#urgent-unopened", "station-inbox-tablet.png")
	readable(t, ctx, base+"/notices/"+urgentID, "#suspicion", "")
	do(t, ctx, "a laptop's screen", chromedp.EmulateViewport(1280, 900))
	readable(t, ctx, base+"/notices/"+urgentID, "#suspicion", "")

	// A form without its CSRF token is refused, and changes nothing.
	set(t, ctx, "#note", "FORGED NOTE")
	js[bool](t, ctx, `(() => { document.querySelector("#note-form input[name=csrf]").remove(); return true })()`)
	submit(t, ctx, "#note-form")
	waitFor(t, ctx, "the refusal", `document.querySelector("#error-message")`)
	if got := text(t, ctx, "#error-message"); !strings.Contains(got, "security token") {
		t.Fatalf("a form without token: %q", got)
	}
	status := js[int](t, ctx, `fetch("/notices/`+urgentID+`/notes", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "note=FORGED+NOTE&csrf=wrong"}).then(r => r.status)`)
	if status != 403 {
		t.Fatalf("a form with a wrong token: HTTP %d, want 403", status)
	}

	// Export: the notice in clear, with the station's own handling.
	exported := js[string](t, ctx, `fetch("/notices/`+urgentID+`/export").then(r => r.text())`)
	var ex struct {
		Notice struct {
			Reference string `json:"reference"`
			Suspicion string `json:"suspicion"`
		} `json:"notice"`
		Triage   struct{ State, Destination string }        `json:"triage"`
		Notes    []struct{ Text string }                    `json:"notes"`
		Messages []struct{ Direction, Status, Text string } `json:"messages"`
	}
	if err := json.Unmarshal([]byte(exported), &ex); err != nil {
		t.Fatalf("export: %v: %s", err, exported)
	}
	if ex.Notice.Reference != "REF-URGENT-1" || !strings.Contains(ex.Notice.Suspicion, "travel booked") ||
		ex.Triage.State != "forwarded" || ex.Triage.Destination != "LKA Berlin, unit 42" || len(ex.Notes) != 1 ||
		len(ex.Messages) != 2 || ex.Messages[0].Status != "sent" || ex.Messages[1].Direction != "in" {
		t.Fatalf("export: %s", exported)
	}
	if strings.Contains(exported, "FORGED") {
		t.Fatal("the refused note was stored")
	}
	// Triage and notes stay in the station: the platform sees neither.
	for _, path := range []string{"/v1/notices/" + urgentID, "/v1/notices/" + urgentID + "/messages"} {
		resp := e.relay.Do("GET", path, "platform:examplenet", nil)
		if resp.Status != 200 || strings.Contains(string(resp.Body), "LKA") || strings.Contains(string(resp.Body), "duty desk") {
			t.Fatalf("the platform's %s shows the station's triage: %s", path, resp)
		}
	}

	// The inbox's filters, by the form: state, urgency, category. The
	// opened urgent notice is no longer bold; the unopened one is.
	filter := func(state, urgency, category string) []string {
		t.Helper()
		open(t, ctx, base+"/", "form.filters")
		set(t, ctx, "#f-state", state)
		set(t, ctx, "#f-urgency", urgency)
		set(t, ctx, "#f-category", category)
		submit(t, ctx, "form.filters")
		waitFor(t, ctx, "the filtered inbox", fmt.Sprintf(`(() => { const q = new URLSearchParams(location.search);
			return q.get("state") === %q && q.get("urgency") === %q && q.get("category") === %q && document.readyState === "complete" })()`,
			state, urgency, category))
		return strings.Fields(js[string](t, ctx, `Array.from(document.querySelectorAll("table.inbox tbody tr a")).map(a => a.textContent).join(" ")`))
	}
	for _, tc := range []struct {
		state, urgency, category string
		want                     []string
	}{
		{"", "", "", []string{"REF-URGENT-1", "REF-NORMAL-1"}},
		{"forwarded", "", "", []string{"REF-URGENT-1"}},
		{"new", "", "", []string{"REF-NORMAL-1"}},
		{"", "normal", "", []string{"REF-NORMAL-1"}},
		{"", "urgent", "human_trafficking", []string{"REF-URGENT-1"}},
		{"", "", "grooming", nil},
	} {
		if got := filter(tc.state, tc.urgency, tc.category); !slices.Equal(got, tc.want) {
			t.Fatalf("filter state=%q urgency=%q category=%q: %v, want %v", tc.state, tc.urgency, tc.category, got, tc.want)
		}
	}
	filter("", "", "")
	if w := js[string](t, ctx, `getComputedStyle(document.querySelector("tr[data-notice='`+urgentID+`'] td")).fontWeight + " " +
		getComputedStyle(document.querySelector("tr[data-notice='`+normalID+`'] td")).fontWeight`); w != "400 700" {
		t.Fatalf("font weights of the opened and the unopened notice: %s, want 400 700", w)
	}

	// The print view names the authority and the notice, without forms.
	open(t, ctx, base+"/notices/"+urgentID+"/print", "#suspicion")
	if n := js[int](t, ctx, `document.querySelectorAll("form#triage-form, form#note-form").length`); n != 0 {
		t.Fatalf("the print view has %d forms", n)
	}
	printsOnA4(t, ctx, 3)

	// The platform withdraws the normal notice: the inbox shows it.
	if resp := e.relay.Do("POST", "/v1/notices/"+normalID+"/withdraw", "platform:examplenet", map[string]string{"reason": "sent in error"}); resp.Status != 202 {
		t.Fatalf("withdraw: %s", resp)
	}
	relaytest.Eventually(t, 20*time.Second, "the withdrawal in the inbox", func() bool {
		firstRow()
		return js[int](t, ctx, `document.querySelectorAll("table.inbox tr.withdrawn").length`) == 1
	})
	open(t, ctx, base+"/notices/"+normalID, "#withdrawn")
	if got := text(t, ctx, "#withdrawn"); !strings.Contains(got, "sent in error") {
		t.Fatalf("withdrawal: %q", got)
	}

	// A follow-up: shown with the notice it follows, which lists it.
	fu := relaytest.Notice("REF-FOLLOW-1", false, "", "DE", "")
	fu["follow_up_of"] = "REF-URGENT-1"
	fuID := e.relay.Submit("examplenet", fu)
	relaytest.Eventually(t, 20*time.Second, "the follow-up stored", func() bool {
		_, err := e.station.Store().Notice(context.Background(), fuID)
		return err == nil
	})
	open(t, ctx, base+"/notices/"+fuID, "#summary")
	if got := text(t, ctx, "#summary"); !strings.Contains(got, "notice REF-URGENT-1") || !js[bool](t, ctx, `!!document.querySelector("#summary a[href='/notices/`+urgentID+`']")`) {
		t.Fatalf("the follow-up does not link the notice it follows: %q", got)
	}
	open(t, ctx, base+"/notices/"+urgentID, "#suspicion")
	if got := text(t, ctx, "#follow-ups"); !strings.Contains(got, "REF-FOLLOW-1") {
		t.Fatalf("the notice's follow-ups: %q", got)
	}

	// An analyst may not read the access log.
	open(t, ctx, base+"/access-log", "#error-message")

	// Sign out: the pages need a sign-in again.
	do(t, ctx, "the inbox", chromedp.Navigate(base+"/"))
	submit(t, ctx, "form.signout")
	waitFor(t, ctx, "the sign-in page", `document.querySelector("#user")`)
	e.expectSignIn(t, ctx, "after signing out")

	// A session cookie of another station, and an expired one, are refused;
	// a valid one made the same way is accepted (so the refusals mean something).
	do(t, ctx, "a foreign cookie", clearCookies(), setCookie(base, "nr_session", "cookie-of-another-station-0123456789abcdef0123"))
	e.expectSignIn(t, ctx, "with another station's cookie")
	now := time.Now()
	e.session(t, "expired-cookie-0123456789abcdef0123456789abcdef", now.Add(-9*time.Hour), now.Add(-time.Hour))
	do(t, ctx, "an expired cookie", clearCookies(), setCookie(base, "nr_session", "expired-cookie-0123456789abcdef0123456789abcdef"))
	e.expectSignIn(t, ctx, "with an expired cookie")
	e.session(t, "valid-cookie-0123456789abcdef0123456789abcdef00", now, now.Add(time.Hour))
	do(t, ctx, "a valid cookie", clearCookies(), setCookie(base, "nr_session", "valid-cookie-0123456789abcdef0123456789abcdef00"),
		chromedp.Navigate(base+"/"))
	waitFor(t, ctx, "the inbox", `document.querySelector("#urgent-unopened")`)
	do(t, ctx, "signing out", clearCookies())

	// The lead reads the access log: every view, export, print and change, by whom.
	signIn(t, ctx, base, "lead", leadPassword)
	open(t, ctx, base+"/access-log", "#access-log")
	logText := text(t, ctx, "#access-log")
	for _, want := range []string{"view", "state change", "note", "message sent", "export", "print", "sign in", "sign out"} {
		if !strings.Contains(logText, want) {
			t.Fatalf("the access log lacks %q:\n%s", want, logText)
		}
	}
	csv := js[string](t, ctx, `fetch("/access-log.csv").then(r => r.text())`)
	if !strings.HasPrefix(csv, "seq,time,user,action,notice,detail\n") || !strings.Contains(csv, ",duty1,export,"+urgentID+",") {
		t.Fatalf("access log CSV:\n%s", csv)
	}
	if strings.Contains(csv, "travel booked") || strings.Contains(csv, "203.0.113.7") {
		t.Fatal("the access log holds the notice's content")
	}
}

// expectSignIn checks that the inbox sends the browser to the sign-in page.
func (e *env) expectSignIn(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	open(t, ctx, e.url+"/", "#password")
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/signin") {
		t.Fatalf("%s: the inbox answered at %s, want the sign-in page", when, loc)
	}
}

// session stores a session of duty1 whose cookie is value.
func (e *env) session(t *testing.T, value string, created, expires time.Time) {
	t.Helper()
	sum := sha256.Sum256([]byte(value))
	if err := e.station.Store().SaveSession(context.Background(), web.Session{Key: hex.EncodeToString(sum[:]), User: "duty1",
		CSRF: "x", Created: created, Expires: expires}); err != nil {
		t.Fatal(err)
	}
}

// sealed reports whether notice id's delivery arrived sealed.
func (e *env) sealed(t *testing.T, id string) bool {
	t.Helper()
	n, err := e.station.Store().Notice(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := e.station.Store().Sealed(context.Background(), n.Deliveries[0])
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// chatPNG is a small image standing in for a screenshot of a chat.
func chatPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 240, 120))
	for y := range 120 {
		for x := range 240 {
			c := color.RGBA{R: 240, G: 244, B: 248, A: 255}
			if y%24 < 16 && x > 12+(y/24%2)*60 && x < 180+(y/24%2)*48 {
				c = color.RGBA{R: 9, G: 105, B: 218, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
