package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// procKiB reads a "Vm..." line of /proc/<pid>/status, in KiB.
func procKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the relay's memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestAttachmentMemory measures the relay's peak resident memory (VmHWM of
// the built binary running `dev`) while a 32 MiB file is uploaded and then
// downloaded by three authorities at once, one of them through age: the
// peak stays below 64 MiB above the relay's idle peak, because neither
// way holds more than a chunk of the file. docs/performance.md has the
// figures.
func TestAttachmentMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	identity, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	authorities := map[string]string{"AT": "at-police", "DE": "de-bka", "FR": "fr-police", "EU": "europol"}
	dev := newDev(t, authorities)
	cfg, err := os.ReadFile(dev.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("    country: DE\n"), []byte("    country: DE\n    age_recipient: "+identity.Recipient().String()+"\n"), 1)
	if err := os.WriteFile(dev.cfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := dev.start()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	client := &http.Client{Timeout: 2 * time.Minute}

	id := submitOne(t, client, dev.base, "MEM-1")
	// Idle: started, the notice routed and handed out to its recipients.
	for _, a := range []string{"at-police", "de-bka", "fr-police"} {
		relaytest.Eventually(t, 30*time.Second, a+"'s notice", func() bool {
			ds, err := inbox[attDelivery](client, dev.base, a)
			for _, d := range ds {
				_ = ack(client, dev.base, a, d.ID)
			}
			return err == nil && len(ds) > 0
		})
	}
	idleRSS, idleHWM := procKiB(t, pid, "VmRSS"), procKiB(t, pid, "VmHWM")

	file := noise(32<<20, 9)
	if st := postFile(dev.base, id, bytes.NewReader(file), int64(len(file))); st != http.StatusCreated {
		t.Fatalf("upload: %d", st)
	}
	afterUpload := procKiB(t, pid, "VmHWM")
	want := hexSum(file)
	file = nil
	var wg sync.WaitGroup
	for _, a := range []string{"at-police", "de-bka", "fr-police"} {
		var d attDelivery
		relaytest.Eventually(t, 30*time.Second, a+"'s attachment delivery", func() bool {
			ds, _ := inbox[attDelivery](client, dev.base, a)
			for _, x := range ds {
				if x.Type == "attachment" {
					d = x
				}
			}
			return d.ID != ""
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", dev.base+"/v1/inbox/"+d.ID+"/attachment", nil)
			req.Header.Set("Authorization", "Bearer authority-token-"+a)
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", a, err)
				return
			}
			defer resp.Body.Close()
			in := io.Reader(resp.Body)
			if a == "de-bka" {
				if in, err = age.Decrypt(resp.Body, identity); err != nil {
					t.Errorf("%s: %v", a, err)
					return
				}
			}
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, in); err != nil || hexSum(buf.Bytes()) != want {
				t.Errorf("%s: download: %v", a, err)
			}
		}()
	}
	wg.Wait()
	peak := procKiB(t, pid, "VmHWM")
	t.Logf("relay VmRSS idle %d KiB, VmHWM idle %d KiB, after the 32 MiB upload %d KiB (+%d), after three downloads %d KiB (+%d)",
		idleRSS, idleHWM, afterUpload, afterUpload-idleHWM, peak, peak-idleHWM)
	if peak-idleHWM >= 64<<10 {
		t.Errorf("peak resident memory grew by %d KiB, not below 64 MiB", peak-idleHWM)
	}
}
