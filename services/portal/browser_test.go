package portal_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/notice"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/web"
)

const password = "correct horse battery staple"

// TestPortalInBrowser walks a person of a small platform through the
// portal in Chromium: sign in, write a notice with a mistake, see the
// validator's error beside the field, correct it, send it, watch the
// recipients acknowledge it without a reload, answer a message and
// withdraw it; and checks what the portal must refuse.
func TestPortalInBrowser(t *testing.T) {
	hash, err := web.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64 // moves the relay's clock, to expire sessions
	r := relaytest.Start(t, relaytest.Options{
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
		Config: func(c *config.Config) {
			c.Platforms[0].Users = []config.User{{ID: "alice", Name: "Alice Example", Password: hash}}
			c.Limits.AttachmentBytes, c.Limits.AttachmentsPerNotice = fileLimit, 2
		}})
	ctx := relaytest.Browser(t)
	base := r.URL + "/portal"

	// Signed out, the portal sends a person to sign in.
	open(t, ctx, base+"/", "#signin-password")
	set(t, ctx, "#platform", "examplenet")
	set(t, ctx, "#user", "alice")
	set(t, ctx, "#password", "wrong password")
	click(t, ctx, "#signin-password button")
	if got := text(t, ctx, "#signin-error"); !strings.Contains(got, "wrong password") {
		t.Fatalf("a wrong password: %q", got)
	}
	set(t, ctx, "#platform", "examplenet")
	set(t, ctx, "#user", "alice")
	set(t, ctx, "#password", password)
	click(t, ctx, "#signin-password button")
	waitFor(t, ctx, "signed in", q("#no-notices"))
	if got := text(t, ctx, ".who"); got != "Alice Example · examplenet" {
		t.Fatalf("signed in as %q", got)
	}

	// A notice with a mistake: the suspect's country is no country.
	click(t, ctx, "#new-notice")
	waitFor(t, ctx, "the form", q("#notice-form"))
	ref := js[string](t, ctx, q("#f-reference")+".value")
	if ref == "" {
		t.Fatal("the form has no reference prefilled")
	}
	set(t, ctx, "#f-category", "human_trafficking")
	set(t, ctx, "#f-exploitation", "sexual")
	set(t, ctx, "#f-imminent_threat", "on")
	set(t, ctx, "#f-urgency_reason", "They meet tonight.")
	set(t, ctx, "#f-suspicion", "A recruiter offers a minor a job abroad.")
	set(t, ctx, "#f-occurred_at", "2026-11-20T14:03")
	set(t, ctx, "#f-occurred_at-zone", "Europe/Berlin")
	click(t, ctx, "button[value='add:suspects']")
	waitFor(t, ctx, "a suspect's fields", q("#f-suspects-0-country"))
	set(t, ctx, "#f-suspects-0-country", "Germanyy")
	set(t, ctx, "#f-suspects-0-username", "jobs4you")
	click(t, ctx, "button[value='add:suspects[0].ip_addresses']")
	waitFor(t, ctx, "an IP address's fields", q("#f-suspects-0-ip_addresses-0-ip"))
	set(t, ctx, "#f-suspects-0-ip_addresses-0-ip", "203.0.113.7")
	set(t, ctx, "#f-suspects-0-ip_addresses-0-port", "50312")
	set(t, ctx, "#f-suspects-0-ip_addresses-0-seen_at", "2026-11-20T13:58:11")
	click(t, ctx, "button[value='add:victims']")
	waitFor(t, ctx, "a victim's fields", q("#f-victims-0-country"))
	set(t, ctx, "#f-victims-0-country", "Romania") // by name
	set(t, ctx, "#f-victims-0-minor", "yes")
	if got := js[string](t, ctx, q("#f-suspects-0-username")+".value"); got != "jobs4you" {
		t.Fatalf("adding a victim lost the suspect's username: %q", got)
	}
	click(t, ctx, "#send")
	waitFor(t, ctx, "the field's error", q(".field-error[data-field='suspects[0].country']"))
	formErr := text(t, ctx, ".field-error[data-field='suspects[0].country']")
	// The API says the same of the same input.
	api := r.Do("POST", "/v1/notices", "platform:examplenet", map[string]any{"reference": "API-SAME-1", "category": "other",
		"imminent_threat": false, "suspicion": "x", "suspects": []map[string]any{{"country": "Germanyy"}}})
	var problem struct {
		Errors []struct{ Field, Message string }
	}
	if err := api.JSON(&problem); err != nil || api.Status != http.StatusBadRequest {
		t.Fatalf("the API's answer: %s", api)
	}
	apiErr := ""
	for _, e := range problem.Errors {
		if e.Field == "suspects[0].country" {
			apiErr = e.Message
		}
	}
	if apiErr == "" || formErr != apiErr {
		t.Fatalf("the form says %q, the API %q for the same country", formErr, apiErr)
	}
	if got := text(t, ctx, "#problems"); !strings.Contains(got, "Suspect 1") {
		t.Fatalf("the summary does not name the field: %q", got)
	}
	screenshot(t, ctx, "portal-form.png")

	// Corrected, by name this time, it is sent.
	set(t, ctx, "#f-suspects-0-country", "Germany")
	click(t, ctx, "#send")
	// Valid, but without a contact: the warning comes before sending.
	waitFor(t, ctx, "the warnings", q("#warnings"))
	if got := text(t, ctx, "#warnings"); !strings.Contains(got, "contact") {
		t.Fatalf("the warnings: %q", got)
	}
	if n := r.Do("GET", "/v1/notices/"+notice.ID("examplenet", ref), "platform:examplenet", nil); n.Status != http.StatusNotFound {
		t.Fatalf("a warning did not stop the notice: %s", n)
	}
	click(t, ctx, "#send-anyway")
	waitFor(t, ctx, "the notice's page", q("#recipients"))
	id := text(t, ctx, "#notice-id")
	if got := text(t, ctx, "#reference"); got != ref {
		t.Fatalf("the page shows reference %q, want %q", got, ref)
	}
	recipients := text(t, ctx, "#recipients")
	for _, want := range []string{"de-bka", "ro-police", "suspect (declared)", "victim (declared)"} {
		if !strings.Contains(recipients, want) {
			t.Fatalf("the recipients lack %q: %q", want, recipients)
		}
	}
	// It is a notice like any other: the API knows it, urgent, with the
	// time in the zone chosen.
	st := r.Status("examplenet", id)
	if st["reference"] != ref || st["priority"] != "urgent" {
		t.Fatalf("the API's view of the portal's notice: %v", st)
	}

	// The authorities acknowledge it; the page follows without a reload.
	mark(t, ctx)
	var deDelivery string // de-bka's delivery of the notice, to write about it
	for _, a := range []string{"de-bka", "ro-police"} {
		ds := r.InboxUntil(a, 1, 30*time.Second)
		if got := ds[0].Notice["occurred_at"]; got != "2026-11-20T14:03:00+01:00" {
			t.Fatalf("%s received occurred_at %v", a, got)
		}
		if code := r.Ack(a, ds[0].ID); code != http.StatusNoContent {
			t.Fatalf("ack by %s: %d", a, code)
		}
		if a == "de-bka" {
			deDelivery = ds[0].ID
			msg := r.Do("POST", "/v1/inbox/"+ds[0].ID+"/messages", "authority:de-bka",
				map[string]any{"kind": "request_information", "text": "Please send the chat log of jobs4you."})
			if msg.Status != http.StatusCreated {
				t.Fatalf("the authority's message: %s", msg)
			}
		}
	}
	waitFor(t, ctx, "acknowledged on the page", q("#notice-status")+".textContent === 'acknowledged'")
	if !js[bool](t, ctx, "window.__portalMark === true") {
		t.Fatal("the page reloaded to show the new status")
	}
	if got := text(t, ctx, "tr[data-authority='de-bka'] [data-k=status]"); got != "acknowledged" {
		t.Fatalf("de-bka's status: %q", got)
	}

	// The message is unread in the list until someone opens the notice.
	base = readAndFiles(t, ctx, r, base, id, deDelivery)

	// The message is read and answered.
	open(t, ctx, base+"/notices/"+id, "#thread-de-bka")
	if got := text(t, ctx, "#thread-de-bka .messages"); !strings.Contains(got, "Please send the chat log of jobs4you.") {
		t.Fatalf("de-bka's thread: %q", got)
	}
	set(t, ctx, "#reply-de-bka", "The chat log is attached to our follow-up.")
	click(t, ctx, "#thread-de-bka form.reply button")
	waitFor(t, ctx, "the answer in the thread", q("#thread-de-bka .from-platform"))
	var th struct {
		Messages []struct{ From, To, Text, InReplyTo string }
	}
	if err := r.Do("GET", "/v1/notices/"+id+"/messages", "platform:examplenet", nil).JSON(&th); err != nil {
		t.Fatal(err)
	}
	if n := len(th.Messages); n != 4 || th.Messages[n-1].From != "platform" || th.Messages[n-1].To != "de-bka" ||
		th.Messages[n-1].Text != "The chat log is attached to our follow-up." {
		t.Fatalf("the thread through the API: %+v", th.Messages)
	}

	// A follow-up starts from the notice and names it.
	click(t, ctx, "#follow-up")
	waitFor(t, ctx, "the follow-up's form", q("#f-follow_up_of"))
	if got := js[string](t, ctx, q("#f-follow_up_of")+".value"); got != ref {
		t.Fatalf("the follow-up's form names %q, want %q", got, ref)
	}
	set(t, ctx, "#f-category", "human_trafficking")
	set(t, ctx, "#f-suspicion", "The chat log of jobs4you.")
	click(t, ctx, "#send")
	waitFor(t, ctx, "the warnings", q("#send-anyway"))
	click(t, ctx, "#send-anyway")
	waitFor(t, ctx, "the follow-up's page", q("#recipients"))
	followID := text(t, ctx, "#notice-id")
	if st := r.Status("examplenet", followID); st["id"] != followID {
		t.Fatalf("the follow-up through the API: %v", st)
	}

	// The list shows them, newest first.
	open(t, ctx, base+"/", "#notices")
	if got := text(t, ctx, "#notices tbody tr:nth-child(2)"); !strings.Contains(got, ref) || !strings.Contains(got, "acknowledged") {
		t.Fatalf("the list's second row: %q", got)
	}

	// A form without its CSRF token is refused and changes nothing.
	open(t, ctx, base+"/notices/"+id, "#withdraw-form")
	set(t, ctx, "#reason", "FORGED")
	js[bool](t, ctx, "(() => { "+q("#withdraw-form input[name=csrf]")+".remove(); return true })()")
	click(t, ctx, "#withdraw-form button")
	waitFor(t, ctx, "the refusal", q("#error-message"))
	if got := text(t, ctx, "#error-message"); !strings.Contains(got, "security token") {
		t.Fatalf("a form without its token: %q", got)
	}
	if st := r.Status("examplenet", id); st["status"] == "withdrawn" {
		t.Fatal("a form without its token withdrew the notice")
	}

	// Withdrawal needs a reason, then tells every recipient.
	open(t, ctx, base+"/notices/"+id, "#withdraw-form")
	click(t, ctx, "#withdraw-form button")
	waitFor(t, ctx, "the reason's error", q("#reason-error"))
	set(t, ctx, "#reason", "Sent by mistake: the account is a test account.")
	click(t, ctx, "#withdraw-form button")
	waitFor(t, ctx, "withdrawn", q("#withdrawn"))
	if js[bool](t, ctx, q("#upload-form")+" !== null") {
		t.Fatal("a withdrawn notice's page offers to upload a file")
	}
	// A withdrawn notice takes no file: the attachments service's 409.
	if got := postFile(t, ctx, base+"/notices/"+id+"/attachments", "late.txt", "sent too late", true); got.Status != http.StatusConflict ||
		!strings.Contains(got.Text, "notice was withdrawn: it takes no new attachments") {
		t.Fatalf("a file for a withdrawn notice: %d %s", got.Status, pageError(got.Text))
	}
	relaytest.Eventually(t, 30*time.Second, "the withdrawal delivered to de-bka", func() bool {
		for _, d := range r.Inbox("de-bka", 10) {
			if d.Type == "withdrawal" && d.NoticeID == id {
				return true
			}
		}
		return false
	})

	// A double click on send makes one notice.
	open(t, ctx, base+"/notices/new", "#notice-form")
	set(t, ctx, "#f-category", "other")
	set(t, ctx, "#f-suspicion", "Sent twice.")
	ref2 := js[string](t, ctx, q("#f-reference")+".value")
	ids := js[[]string](t, ctx, `(async () => {
		const f = document.querySelector("#notice-form");
		const send = () => { const d = new FormData(f); d.set("op", "send-anyway"); return fetch(f.action, {method: "POST", body: new URLSearchParams(d)}).then(r => r.url) };
		return Promise.all([send(), send()]);
	})()`)
	if len(ids) != 2 || ids[0] != ids[1] || !strings.Contains(ids[0], "/portal/notices/") {
		t.Fatalf("two sends of one form went to %v", ids)
	}
	open(t, ctx, base+"/", "#notices")
	relaytest.Eventually(t, 20*time.Second, "the second notice listed", func() bool {
		open(t, ctx, base+"/", "#notices")
		return strings.Count(text(t, ctx, "#notices"), ref2) == 1
	})

	// Another platform's session cannot open the notice.
	do(t, ctx, "signing out", clearCookies())
	open(t, ctx, base+"/signin", "#signin-token")
	set(t, ctx, "#token", r.Tokens["platform:othernet"])
	click(t, ctx, "#signin-token button")
	waitFor(t, ctx, "othernet signed in", q(".who"))
	if got := text(t, ctx, ".who"); !strings.Contains(got, "othernet") {
		t.Fatalf("signed in as %q", got)
	}
	open(t, ctx, base+"/notices/"+id, "#error-message")
	if got := text(t, ctx, "h1"); !strings.Contains(got, "Not Found") {
		t.Fatalf("othernet opened examplenet's notice: %q", got)
	}
	if got := js[int](t, ctx, `fetch("`+base+`/notices/`+id+`/status").then(r => r.status)`); got != http.StatusNotFound {
		t.Fatalf("othernet read examplenet's notice's status: HTTP %d", got)
	}
	open(t, ctx, base+"/", "#no-notices")

	// An expired session is sent to sign in.
	skew.Store(int64(9 * time.Hour))
	do(t, ctx, "reloading", chromedp.Navigate(base+"/"))
	waitFor(t, ctx, "the sign-in page", q("#signin-token"))
	if u := js[string](t, ctx, "location.pathname"); u != "/portal/signin" {
		t.Fatalf("an expired session went to %s", u)
	}
}
