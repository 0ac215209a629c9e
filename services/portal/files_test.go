package portal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// fileLimit is the test relay's limits.attachment_bytes: a file of two
// chunks fits, one byte more does not.
const fileLimit = 600 << 10

// readAndFiles checks, on notice id whose recipient de-bka has written
// once (about its delivery deDelivery), that the message is unread until
// the notice's page is opened, that the read marks survive a restart,
// and the upload of evidence files from the notice's page: listed with
// their hash and each recipient's state, received by an authority,
// refused with the attachments service's own errors. It returns the
// portal's address after the restart.
func readAndFiles(t *testing.T, ctx context.Context, r *relaytest.Relay, base, id, deDelivery string) string {
	t.Helper()
	unreadCell := "tr[data-id='" + id + "'] [data-k=unread] .badge"
	listUnread := func(want string) {
		t.Helper()
		relaytest.Eventually(t, 30*time.Second, want+" unread in the list", func() bool {
			open(t, ctx, base+"/", "#notices")
			got := js[string](t, ctx, "("+q(unreadCell)+" || {innerText: '0'}).innerText")
			return strings.TrimSpace(got) == want
		})
	}
	listUnread("1")
	if got := text(t, ctx, "nav .badge"); got != "1" {
		t.Fatalf("the navigation's unread count: %q", got)
	}

	// Opening the notice shows the message as new, and reads it for the
	// whole platform.
	open(t, ctx, base+"/notices/"+id, "#thread-de-bka")
	if got := text(t, ctx, "#thread-de-bka .message.new"); !strings.Contains(got, "Please send the chat log of jobs4you.") {
		t.Fatalf("de-bka's new message: %q", got)
	}
	if got := text(t, ctx, "#unread-de-bka"); got != "1 new" {
		t.Fatalf("de-bka's thread's badge: %q", got)
	}
	open(t, ctx, base+"/notices/"+id, "#thread-de-bka")
	if js[bool](t, ctx, q(".message.new")+" !== null || "+q("#unread-de-bka")+" !== null") {
		t.Fatal("a message read before is new again")
	}
	listUnread("0")

	// A file uploaded from the notice's page streams to the attachments
	// service and is listed with its hash.
	dir := t.TempDir()
	var chat bytes.Buffer
	for i := 0; chat.Len() < 300<<10; i++ {
		fmt.Fprintf(&chat, "%05d jobs4you: the job is in Vienna, bring your passport\n", i)
	}
	chatPath := filepath.Join(dir, "chat-jobs4you.txt")
	if err := os.WriteFile(chatPath, chat.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(chat.Bytes())
	hash := hex.EncodeToString(sum[:])
	upload := func(path string) {
		t.Helper()
		open(t, ctx, base+"/notices/"+id, "#upload-form")
		click(t, ctx, "#relevance-supplemental")
		do(t, ctx, "choosing "+path, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path}))
		mark(t, ctx)
		click(t, ctx, "#upload")
		waitFor(t, ctx, "the page after the upload", "window.__portalMark !== true && "+q("#files"))
	}
	upload(chatPath)
	if got := text(t, ctx, ".flash"); !strings.Contains(got, "chat-jobs4you.txt is stored") {
		t.Fatalf("after the upload: %q", got)
	}
	row := text(t, ctx, "#file-list tr[data-sha256='"+hash+"']")
	for _, want := range []string{"chat-jobs4you.txt", "text/plain", "300.0 KiB", hash, "context"} {
		if !strings.Contains(row, want) {
			t.Fatalf("the file's row lacks %q: %q", want, row)
		}
	}
	// The same file again is stored once.
	upload(chatPath)
	if got := text(t, ctx, ".flash"); !strings.Contains(got, "uploaded before") {
		t.Fatalf("the same file again: %q", got)
	}
	if n := js[int](t, ctx, "document.querySelectorAll('#file-list tbody tr').length"); n != 1 {
		t.Fatalf("%d files listed after the same file twice", n)
	}

	// de-bka receives it through its inbox, byte for byte, and its
	// acknowledgement shows on the page.
	var got relaytest.Delivery
	relaytest.Eventually(t, 30*time.Second, "the file in de-bka's inbox", func() bool {
		for _, d := range r.Inbox("de-bka", 10) {
			if d.Type == "attachment" && d.NoticeID == id {
				got = d
			}
		}
		return got.ID != ""
	})
	if got.Attachment["sha256"] != hash || got.Attachment["filename"] != "chat-jobs4you.txt" ||
		got.Attachment["relevance"] != "supplemental" {
		t.Fatalf("de-bka's attachment delivery: %v", got.Attachment)
	}
	if f := r.Do("GET", "/v1/inbox/"+got.ID+"/attachment", "authority:de-bka", nil); f.Status != http.StatusOK ||
		!bytes.Equal(f.Body, chat.Bytes()) {
		t.Fatalf("de-bka's download: HTTP %d, %d bytes", f.Status, len(f.Body))
	}
	if code := r.Ack("de-bka", got.ID); code != http.StatusNoContent {
		t.Fatalf("de-bka's ack of the file: %d", code)
	}
	relaytest.Eventually(t, 30*time.Second, "the file acknowledged on the page", func() bool {
		open(t, ctx, base+"/notices/"+id, "#file-list")
		return text(t, ctx, "#file-list li[data-authority='de-bka'] .status") == "acknowledged"
	})

	// A file over the limit: the page says so before sending it...
	big := filepath.Join(dir, "screen-recording.txt")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), fileLimit+1), 0o600); err != nil {
		t.Fatal(err)
	}
	open(t, ctx, base+"/notices/"+id, "#upload-form")
	do(t, ctx, "choosing a file too big", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{big}))
	if msg := js[string](t, ctx, q("#file")+".validationMessage"); !strings.Contains(msg, "larger than the relay takes") {
		t.Fatalf("the page's own check of a file too big: %q", msg)
	}
	// ... and the relay refuses it with the API's words, linked from the
	// page's summary, which takes the focus.
	open(t, ctx, base+"/notices/"+id, "#upload-form")
	js[bool](t, ctx, "(() => { "+q("#file")+".removeAttribute('data-max-bytes'); return true })()")
	do(t, ctx, "choosing a file too big", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{big}))
	click(t, ctx, "#upload")
	waitFor(t, ctx, "the file's error", q("#file-error"))
	if got := text(t, ctx, "#file-error"); !strings.Contains(got, "at most "+strconv.Itoa(fileLimit)+" bytes") {
		t.Fatalf("a file too big: %q", got)
	}
	if !js[bool](t, ctx, q("#problems a[href='#file']")+" !== null && document.activeElement === "+q("#problems")) {
		t.Fatal("the summary does not link the file's error, or does not have the focus")
	}
	if js[string](t, ctx, q("#file")+".getAttribute('aria-describedby')") != "file-hint file-error" {
		t.Fatal("the file input does not point to its error")
	}

	// de-bka writes again: the page shows the files and the new message.
	say := func(text string) {
		t.Helper()
		if m := r.Do("POST", "/v1/inbox/"+deDelivery+"/messages", "authority:de-bka",
			map[string]any{"kind": "other", "text": text}); m.Status != http.StatusCreated {
			t.Fatalf("de-bka's message: %s", m)
		}
	}
	say("Thank you, we have the chat log.")
	open(t, ctx, base+"/notices/"+id, "#unread-note")
	if got := text(t, ctx, "#thread-de-bka .message.new"); !strings.Contains(got, "we have the chat log") {
		t.Fatalf("de-bka's second message: %q", got)
	}
	screenshot(t, ctx, "portal-notice.png")

	// A second file fills the notice (2 files here); a third is refused.
	png := filepath.Join(dir, "profile.png")
	if err := os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n not really a picture"), 0o600); err != nil {
		t.Fatal(err)
	}
	upload(png)
	waitFor(t, ctx, "the notice full", q("#files-full"))
	if n := js[int](t, ctx, "document.querySelectorAll('#file-list tbody tr').length"); n != 2 {
		t.Fatalf("%d files listed, want 2", n)
	}
	if got := postFile(t, ctx, base+"/notices/"+id+"/attachments", "third.txt", "one too many", true); got.Status != http.StatusConflict ||
		!strings.Contains(got.Text, "notice may have at most 2 attachments") {
		t.Fatalf("a third file: %d %s", got.Status, pageError(got.Text))
	}
	// An upload without the CSRF token is refused before it is read.
	if got := postFile(t, ctx, base+"/notices/"+id+"/attachments", "forged.txt", "forged", false); got.Status != http.StatusForbidden ||
		!strings.Contains(got.Text, "security token") {
		t.Fatalf("an upload without its token: %d %s", got.Status, pageError(got.Text))
	}

	// A third stays unread across a restart; the two read stay read.
	say("Is the account jobs4you still active?")
	listUnread("1")
	screenshot(t, ctx, "portal-list.png")
	r.Restart()
	base = r.URL + "/portal"
	open(t, ctx, base+"/", "#signin-password")
	set(t, ctx, "#platform", "examplenet")
	set(t, ctx, "#user", "alice")
	set(t, ctx, "#password", password)
	click(t, ctx, "#signin-password button")
	waitFor(t, ctx, "signed in again", q(".who"))
	listUnread("1")
	return base
}

// upload is a page's answer to a form sent by its script.
type upload struct {
	Status int    `json:"status"`
	Text   string `json:"text"`
}

// postFile sends a multipart form with a file from the page's script, with
// the page's CSRF token first or without it.
func postFile(t *testing.T, ctx context.Context, url, name, content string, withToken bool) upload {
	t.Helper()
	return js[upload](t, ctx, `(async () => {
		const d = new FormData();
		if (`+strconv.FormatBool(withToken)+`) d.append("csrf", document.querySelector("input[name=csrf]").value);
		d.append("relevance", "reported");
		d.append("file", new Blob([`+strconv.Quote(content)+`], {type: "text/plain"}), `+strconv.Quote(name)+`);
		const r = await fetch(`+strconv.Quote(url)+`, {method: "POST", body: d});
		return {status: r.status, text: await r.text()};
	})()`)
}

var tags = regexp.MustCompile(`<[^>]*>|\s+`)

// pageError is the error text of a page, for a failure's message.
func pageError(page string) string {
	for _, id := range []string{`id="file-error">`, `id="error-message">`} {
		if _, rest, ok := strings.Cut(page, id); ok {
			msg, _, _ := strings.Cut(rest, "<")
			return msg
		}
	}
	s := tags.ReplaceAllString(page, " ")
	return s[:min(len(s), 300)]
}
