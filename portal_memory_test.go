package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPortalUploadMemory measures the relay's peak resident memory (VmHWM
// of the built binary running `dev`) while a person uploads a 32 MiB file
// from a notice's page in the portal, after a 32 MiB upload through the
// API has brought the embedded NATS server's store to its own peak: the
// multipart form streams into the attachments service's handler a chunk
// at a time, so the portal's upload adds next to nothing (measured: under
// 1 MiB; a portal that read the file whole added 13 MiB).
func TestPortalUploadMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dev := newDev(t, map[string]string{"AT": "at-police"})
	cmd := dev.start()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Timeout: 2 * time.Minute, Jar: jar}

	submit := func(ref string) string { return submitWith(t, client, dev.base, ref, `"locations":[{"country":"AT"}]`) }
	idleHWM := procKiB(t, pid, "VmHWM")
	if st := postFile(dev.base, submit("API-MEM-1"), bytes.NewReader(noise(32<<20, 3)), 32<<20); st != http.StatusCreated {
		t.Fatalf("the upload through the API: %d", st)
	}
	apiHWM := procKiB(t, pid, "VmHWM")
	id := submit("PORTAL-MEM-1")
	// Signed in with the platform's token, on the notice's page.
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", resp.Request.URL, resp.StatusCode)
		}
		return string(b)
	}
	m := csrf.FindStringSubmatch(page(client.Get(dev.base + "/portal/signin")))
	if m == nil {
		t.Fatal("no token on the sign-in page")
	}
	page(client.PostForm(dev.base+"/portal/signin", url.Values{"csrf": {m[1]}, "next": {"/portal/"},
		"token": {"platform-token-p1-xxxx"}}))
	notice := dev.base + "/portal/notices/" + id
	if m = csrf.FindStringSubmatch(page(client.Get(notice))); m == nil {
		t.Fatal("no token on the notice's page")
	}

	// The form streams from a pipe: the test holds no more of the file
	// than the relay should.
	const size = 32 << 20
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	sum := sha256.New()
	go func() {
		_ = mw.WriteField("csrf", m[1])
		_ = mw.WriteField("relevance", "reported")
		fw, err := mw.CreateFormFile("file", "recording.bin")
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		rng := rand.NewChaCha8([32]byte{7})
		buf := make([]byte, 64<<10)
		for n := 0; n < size; n += len(buf) {
			_, _ = rng.Read(buf)
			sum.Write(buf)
			if _, err := fw.Write(buf); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest("POST", notice+"/attachments", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	got := page(client.Do(req))
	want := hex.EncodeToString(sum.Sum(nil))
	if !strings.Contains(got, `data-sha256="`+want+`"`) || !strings.Contains(got, "recording.bin is stored") {
		t.Fatalf("the notice's page after the upload does not list the file %s", want)
	}
	peak := procKiB(t, pid, "VmHWM")
	t.Logf("relay VmHWM idle %d KiB, after a 32 MiB upload through the API %d KiB (+%d), after one through the portal %d KiB (+%d more)",
		idleHWM, apiHWM, apiHWM-idleHWM, peak, peak-apiHWM)
	if peak-apiHWM >= 6<<10 {
		t.Errorf("a 32 MiB upload through the portal added %d KiB to the peak, not below 6 MiB", peak-apiHWM)
	}
}
