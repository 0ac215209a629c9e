package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// attDelivery is a delivery of type attachment as the inbox hands it out.
type attDelivery struct {
	ID         string `json:"id"`
	NoticeID   string `json:"notice_id"`
	Type       string `json:"type"`
	Attachment struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"attachment"`
}

func noise(size int, seed byte) []byte {
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// postFile uploads body (read from r) as a file of notice id; status 0
// means no answer.
func postFile(base, id string, r io.Reader, size int64) int {
	req, _ := http.NewRequest("POST", base+"/v1/notices/"+id+"/attachments", r)
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer platform-token-p1-xxxx")
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// stallingReader hands out data up to at, says so on reached, and then
// waits for release before giving the rest (or an error).
type stallingReader struct {
	data    []byte
	at, off int
	reached chan struct{}
	release chan error
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.off == s.at && s.reached != nil {
		close(s.reached)
		s.reached = nil
		if err := <-s.release; err != nil {
			return 0, err
		}
	}
	end := len(s.data)
	if s.off < s.at {
		end = s.at
	}
	n := copy(p, s.data[s.off:end])
	s.off += n
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// submitOne submits the notice with reference ref as platform p1 and
// returns its id.
func submitOne(t *testing.T, client *http.Client, base, ref string) string {
	t.Helper()
	return submitWith(t, client, base, ref, `"locations":[{"country":"AT"}],"suspects":[{"country":"DE"}],"victims":[{"country":"FR"}]`)
}

// submitWith submits, as platform p1, the notice with reference ref whose
// countries are the JSON members countries, and returns its id.
func submitWith(t *testing.T, client *http.Client, base, ref, countries string) string {
	t.Helper()
	body := []byte(`{"reference":"` + ref + `","category":"threat_to_life","imminent_threat":false,"suspicion":"threat in a thread",` +
		countries + `}`)
	req, _ := http.NewRequest("POST", base+"/v1/notices", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer platform-token-p1-xxxx")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("submit: %v %v", err, resp)
	}
	defer resp.Body.Close()
	var accepted struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&accepted)
	return accepted.ID
}

// fetchFile downloads the file of delivery id and returns its SHA-256.
func fetchFile(c *http.Client, base, authority, id string, stall func()) (string, error) {
	req, _ := http.NewRequest("GET", base+"/v1/inbox/"+id+"/attachment", nil)
	req.Header.Set("Authorization", "Bearer authority-token-"+authority)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("download: %d", resp.StatusCode)
	}
	h := sha256.New()
	if stall != nil {
		if _, err := io.CopyN(h, resp.Body, 1<<20); err != nil {
			return "", err
		}
		stall()
	}
	if _, err := io.Copy(h, resp.Body); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TestAttachmentKillLosesNothing kills the relay (SIGKILL) in the middle
// of an upload, right after a 201, and in the middle of a download: the
// upload without an answer completes on retry, and in the end each of the
// three recipients has every stored file under exactly one delivery id,
// whole, and nothing of the cut upload.
func TestAttachmentKillLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	authorities := map[string]string{"AT": "at-police", "DE": "de-bka", "FR": "fr-police", "EU": "europol"}
	dev := newDev(t, authorities)
	cmd := dev.start()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	kill := func() {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	client := &http.Client{Timeout: time.Minute}
	id := submitOne(t, client, dev.base, "FILES-1")

	files := [][]byte{noise(6<<20+5, 1), noise(3<<20, 2), noise(5<<20+1, 3)}
	stored := map[string]bool{}

	// 1. Killed mid-upload: no answer; the retry stores the file.
	// The relay may answer before it has read the first 2 MiB (a busy
	// machine: 503 past the store timeout, 429 past the share): then the
	// reader is never read to its stall, so the test waits for either and
	// starts the upload again after an answer the API allows.
	var sr *stallingReader
	answered := make(chan int, 1)
	for attempt := 1; ; attempt++ {
		sr = &stallingReader{data: files[0], at: 2<<20 + 100, reached: make(chan struct{}), release: make(chan error)}
		go func(sr *stallingReader) { answered <- postFile(dev.base, id, sr, int64(len(files[0]))) }(sr)
		select {
		case <-sr.reached:
		case st := <-answered:
			if (st == http.StatusServiceUnavailable || st == http.StatusTooManyRequests) && attempt < 5 {
				t.Logf("upload %d answered %d before its stall; again", attempt, st)
				time.Sleep(time.Second)
				continue
			}
			t.Fatalf("upload %d answered %d before the relay read 2 MiB of it", attempt, st)
		case <-time.After(2 * time.Minute):
			t.Fatal("the relay did not read 2 MiB of the upload in 2 minutes")
		}
		break
	}
	// Kill while the relay waits for the rest of the body.
	kill()
	sr.release <- errors.New("the relay is gone")
	if st := <-answered; st != 0 {
		t.Fatalf("an upload cut by a kill answered %d", st)
	}
	cmd = dev.start()
	if st := postFile(dev.base, id, bytes.NewReader(files[0]), int64(len(files[0]))); st != http.StatusCreated {
		t.Fatalf("retried upload: %d", st)
	}
	stored[hexSum(files[0])] = true

	// 2. Killed right after a 201: the file is stored; its deliveries
	// follow after the restart.
	if st := postFile(dev.base, id, bytes.NewReader(files[1]), int64(len(files[1]))); st != http.StatusCreated {
		t.Fatalf("upload: %d", st)
	}
	stored[hexSum(files[1])] = true
	kill()
	cmd = dev.start()
	if st := postFile(dev.base, id, bytes.NewReader(files[2]), int64(len(files[2]))); st != http.StatusCreated {
		t.Fatalf("upload: %d", st)
	}
	stored[hexSum(files[2])] = true

	// 3. Killed mid-download: the delivery comes back, whole.
	var first []attDelivery
	relaytest.Eventually(t, 30*time.Second, "an attachment delivery for at-police", func() bool {
		ds, err := inbox[attDelivery](client, dev.base, "at-police")
		for _, d := range ds {
			if d.Type == "attachment" {
				first = append(first, d)
			}
		}
		return err == nil && len(first) > 0
	})
	if _, err := fetchFile(client, dev.base, "at-police", first[0].ID, kill); err == nil {
		t.Fatal("a download cut by a kill ended normally")
	}
	cmd = dev.start()

	// Every recipient ends with every stored file, once, whole.
	for _, a := range []string{"at-police", "de-bka", "fr-police"} {
		ids := map[string]string{} // sha256 -> delivery id
		relaytest.Eventually(t, 60*time.Second, a+"'s files", func() bool {
			ds, err := inbox[attDelivery](client, dev.base, a)
			if err != nil {
				return false
			}
			for _, d := range ds {
				if d.Type != "attachment" {
					_ = ack(client, dev.base, a, d.ID)
					continue
				}
				if !stored[d.Attachment.SHA256] {
					t.Fatalf("%s got a file nobody stored: %+v", a, d)
				}
				if prev, ok := ids[d.Attachment.SHA256]; ok && prev != d.ID {
					t.Fatalf("%s got one file under two delivery ids: %s, %s", a, prev, d.ID)
				}
				got, err := fetchFile(client, dev.base, a, d.ID, nil)
				if err != nil || got != d.Attachment.SHA256 {
					t.Fatalf("%s: download of %s: %v (sha %s)", a, d.ID, err, got)
				}
				ids[d.Attachment.SHA256] = d.ID
				if err := ack(client, dev.base, a, d.ID); err != nil {
					t.Fatal(err)
				}
			}
			return len(ids) == len(stored)
		})
	}
}
