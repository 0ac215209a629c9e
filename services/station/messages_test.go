package station_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
	store "github.com/noticerelay/noticerelay/pkg/station"
)

// post submits a form of the notice page (with the page's CSRF token) and
// returns the page it leads to.
func (e *env) post(t *testing.T, c *http.Client, page, action string, form url.Values) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(e.get(t, c, page))
	if m == nil {
		t.Fatalf("no CSRF token on %s", page)
	}
	form.Set("csrf", m[1])
	resp, err := c.PostForm(e.url+action, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// platformThread is the thread of a notice as the platform reads it.
func (e *env) platformThread(t *testing.T, noticeID string) []map[string]any {
	t.Helper()
	var th struct {
		Messages []map[string]any `json:"messages"`
	}
	if resp := e.relay.Do("GET", "/v1/notices/"+noticeID+"/messages", "platform:examplenet", nil); resp.Status != 200 || resp.JSON(&th) != nil {
		t.Fatalf("the platform's thread: %s", resp)
	}
	return th.Messages
}

// A message written while the relay is down is kept as pending, says so,
// and is sent when the relay is back: once, even though it was sent twice
// (the station's retry and an earlier attempt whose answer it never saw).
func TestMessageSentAfterOutageExactlyOnce(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, "duty1", analystPassword)
	id := e.relay.Submit("examplenet", relaytest.Notice("MSG-OUT-1", false, "", "DE", ""))
	relaytest.Eventually(t, 20*time.Second, "the notice stored", func() bool { return e.stored(t) == 1 })
	page := "/notices/" + id

	e.relay.Stop()
	answer := e.post(t, c, page, page+"/messages", url.Values{"kind": {"preservation_request"}, "text": {"Preserve the account u-1."}})
	if !strings.Contains(answer, "Kept as pending") || !strings.Contains(answer, `class="tag pending"`) {
		t.Fatalf("the page after writing during the outage:\n%s", answer)
	}
	n, err := e.station.Store().Notice(context.Background(), id)
	if err != nil || len(n.Messages) != 1 || n.Messages[0].Status != store.MessagePending {
		t.Fatalf("the message during the outage: %+v %v", n.Messages, err)
	}
	msg := n.Messages[0]

	// As if an earlier attempt had reached the relay and the station had
	// crashed before recording the answer: the same Idempotency-Key again.
	e.relay.Restart()
	direct := e.relay.DoHeader("POST", "/v1/inbox/"+n.Deliveries[0]+"/messages", "authority:"+authority,
		http.Header{"Idempotency-Key": {msg.ID}}, map[string]any{"kind": "preservation_request", "text": "Preserve the account u-1."})
	if direct.Status != http.StatusCreated {
		t.Fatalf("the earlier attempt: %s", direct)
	}
	relaytest.Eventually(t, 40*time.Second, "the pending message sent", func() bool {
		n, err := e.station.Store().Notice(context.Background(), id)
		return err == nil && n.Messages[0].Status == store.MessageSent
	})
	n, _ = e.station.Store().Notice(context.Background(), id)
	th := e.platformThread(t, id)
	if len(th) != 1 || th[0]["id"] != direct.Map()["id"] || th[0]["id"] != n.Messages[0].RelayID || th[0]["text"] != "Preserve the account u-1." {
		t.Fatalf("the platform's thread: %v; the station's message: %+v", th, n.Messages[0])
	}
	if p := e.get(t, c, page); !strings.Contains(p, `class="tag sent"`) || strings.Contains(p, `class="tag pending"`) {
		t.Fatalf("the page after sending:\n%s", p)
	}

	// The thread's fragment: 204 while nothing changed, the new thread after.
	v, err := e.station.Store().ThreadVersion(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(e.url + page + "/thread?since=" + url.QueryEscape(v))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the thread unchanged: HTTP %d", resp.StatusCode)
	}
	if r := e.relay.Do("POST", "/v1/notices/"+id+"/messages", "platform:examplenet", map[string]any{"to": authority,
		"text": "Preserved for 90 days.", "in_reply_to": n.Messages[0].RelayID}); r.Status != 201 {
		t.Fatalf("the platform's answer: %s", r)
	}
	relaytest.Eventually(t, 20*time.Second, "the answer in the thread fragment", func() bool {
		resp, err := c.Get(e.url + page + "/thread?since=" + url.QueryEscape(v))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && resp.Header.Get("Live-Version") != v && strings.Contains(string(body), "Preserved for 90 days.") &&
			!strings.Contains(string(body), "<html")
	})

	// The access log has the message written and the disclosure, never its text.
	var b strings.Builder
	if err := e.station.Store().WriteAccessCSV(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	csv := b.String()
	if !strings.Contains(csv, ",duty1,message,"+id+",kind=preservation_request pending") ||
		!strings.Contains(csv, ",duty1,message_sent,"+id+",kind=preservation_request") || strings.Contains(csv, "Preserve the account") {
		t.Fatalf("the access log:\n%s", csv)
	}
}
