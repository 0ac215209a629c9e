package station_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// An evidence file reaches the station sealed, is kept sealed, and is
// opened, checked and logged only when an analyst looks at it.
func TestAttachmentKeptSealedAndShown(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, "duty1", analystPassword)
	id := e.relay.Submit("examplenet", relaytest.Notice("ATT-1", false, "", "DE", ""))
	file := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("evidence"), 1000)...)
	e.upload(t, id, "chat.png", "image/png", file)
	var did string
	relaytest.Eventually(t, 40*time.Second, "the file kept", func() bool {
		n, err := e.station.Store().Notice(context.Background(), id)
		if err != nil || len(n.Attachments) != 1 || !n.Attachments[0].Downloaded {
			return false
		}
		did = n.Attachments[0].DeliveryID
		return true
	})
	_, kept, sealed, err := e.station.Store().AttachmentFile(context.Background(), id, did)
	if err != nil || !sealed || bytes.Contains(kept, []byte("evidence")) {
		t.Fatalf("kept: sealed=%v, %d bytes, err %v: want the age encryption", sealed, len(kept), err)
	}
	page := e.get(t, c, "/notices/"+id)
	if !strings.Contains(page, `<img class="evidence" src="/notices/`+id+`/attachments/`+did+`"`) || !strings.Contains(page, "chat.png") {
		t.Fatalf("the notice page does not show the image:\n%s", page)
	}
	resp, err := c.Get(e.url + "/notices/" + id + "/attachments/" + did)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, file) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("the image: HTTP %d, %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
	}
	resp, err = c.Get(e.url + "/notices/" + id + "/attachments/" + did + "?download=1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, file) || !strings.Contains(resp.Header.Get("Content-Disposition"), `filename=chat.png`) {
		t.Fatalf("the download: %q, %d bytes", resp.Header.Get("Content-Disposition"), len(got))
	}
	var b strings.Builder
	if err := e.station.Store().WriteAccessCSV(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), ",duty1,attachment_view,"+id+",attachment="+did) || !strings.Contains(b.String(), ",duty1,download,"+id+",attachment="+did) {
		t.Fatalf("the access log:\n%s", b.String())
	}
}

// upload adds a file to a notice as its platform would.
func (e *env) upload(t *testing.T, noticeID, name, mediaType string, file []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.relay.URL+"/v1/notices/"+noticeID+"/attachments", bytes.NewReader(file))
	req.Header.Set("Authorization", "Bearer "+e.relay.Tokens["platform:examplenet"])
	req.Header.Set("Content-Type", mediaType)
	req.Header.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: HTTP %d", resp.StatusCode)
	}
}

// A file whose notice the platform withdraws before the station could
// download it answers 410 at the relay: the station records it as
// withdrawn, says so on the notice page and does not ask for it again
// (before, it asked every round for as long as it ran). The station
// reaches the relay through a gate that refuses downloads until the
// withdrawal has arrived.
func TestAttachmentWithdrawnBeforeDownload(t *testing.T) {
	var open atomic.Bool
	var asked atomic.Int64
	e := newEnvWith(t, nil, func(yaml string) string {
		target, err := url.Parse(regexp.MustCompile(`url: (\S+),`).FindStringSubmatch(yaml)[1])
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/attachment") {
				asked.Add(1)
				if !open.Load() {
					http.Error(w, "the test holds downloads back", http.StatusServiceUnavailable)
					return
				}
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(gate.Close)
		return strings.Replace(yaml, "url: "+target.String(), "url: "+gate.URL, 1)
	})
	c := e.client(t, "duty1", analystPassword)
	id := e.relay.Submit("examplenet", relaytest.Notice("ATT-WD", false, "", "DE", ""))
	e.upload(t, id, "chat.png", "image/png", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("evidence"), 100)...))
	relaytest.Eventually(t, 40*time.Second, "a download tried and held back", func() bool { return asked.Load() > 0 })
	if resp := e.relay.Do("POST", "/v1/notices/"+id+"/withdraw", "platform:examplenet", map[string]string{"reason": "sent in error"}); resp.Status != http.StatusAccepted {
		t.Fatal(resp)
	}
	relaytest.Eventually(t, 40*time.Second, "the notice withdrawn at the station", func() bool {
		n, err := e.station.Store().Notice(context.Background(), id)
		return err == nil && n.Withdrawn
	})
	open.Store(true)
	relaytest.Eventually(t, 40*time.Second, "the file recorded as withdrawn", func() bool {
		n, err := e.station.Store().Notice(context.Background(), id)
		return err == nil && len(n.Attachments) == 1 && n.Attachments[0].Withdrawn && !n.Attachments[0].Downloaded
	})
	before := asked.Load()
	time.Sleep(time.Second) // ten rounds of the station
	if after := asked.Load(); after != before {
		t.Errorf("the withdrawn file was asked for %d more times", after-before)
	}
	if page := e.get(t, c, "/notices/"+id); !strings.Contains(page, "the platform withdrew the notice before the file was downloaded") {
		t.Fatalf("the notice page does not say the file was withdrawn:\n%s", page)
	}
}
