package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
	"github.com/noticerelay/noticerelay/pkg/station"
	"github.com/noticerelay/noticerelay/pkg/web"
)

// TestStationKillLosesNothing kills the station process (SIGKILL) three
// times while sealed notices arrive (at least n), then lets it catch up:
// every notice is stored exactly once and every delivery is acknowledged.
func TestStationKillLosesNothing(t *testing.T) {
	const n = 24
	bin := buildRelay(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r := relaytest.Start(t, relaytest.Options{Config: func(c *config.Config) {
		c.Inbox.Lease = config.Duration(3 * time.Second)
		for i := range c.Authorities {
			if c.Authorities[i].ID == "de-bka" {
				c.Authorities[i].AgeRecipient = id.Recipient().String()
			}
		}
	}})
	dir := t.TempDir()
	key, data, cfg := filepath.Join(dir, "authority.agekey"), filepath.Join(dir, "data"), filepath.Join(dir, "station.yaml")
	hash, err := web.HashPassword("a password for the kill test")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	files := map[string]string{
		key: id.String() + "\n",
		cfg: fmt.Sprintf("relay: {url: %s, token_env: NR_STATION_TOKEN}\nidentity: %s\ndata: %s\n"+
			"http: {listen: 127.0.0.1:%d}\nusers:\n  - {id: lead, name: Lead, password: %q, role: lead}\n", r.URL, key, data, port, hash),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "station", "--config", cfg)
		cmd.Env = append(os.Environ(), "NR_STATION_TOKEN="+r.Tokens["authority:de-bka"])
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		relaytest.Eventually(t, 30*time.Second, "the station serving", func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == 200
		})
		return cmd
	}
	// stored counts the notices in the station's database (read while the
	// station runs, as another process: WAL lets it).
	stored := func() int {
		s, err := station.Open(context.Background(), data)
		if err != nil {
			return -1
		}
		defer s.Close()
		rows, err := s.Inbox(context.Background(), station.Filter{}, 100*n)
		if err != nil {
			return -1
		}
		return len(rows)
	}

	// Notices keep arriving until the kills are done (at least n), so that
	// every run of the station has new ones to store, however slowly it starts.
	stop, submitted := make(chan struct{}), make(chan []string, 1)
	go func() {
		var ids []string
		for i := 0; ; i++ {
			if i >= n {
				select {
				case <-stop:
					submitted <- ids
					return
				default:
				}
			}
			ids = append(ids, r.Submit("examplenet", relaytest.Notice(fmt.Sprintf("KILL-%03d", i), i%3 == 0, "", "DE", "")))
			time.Sleep(50 * time.Millisecond)
		}
	}()

	for kill := range 3 {
		before := stored()
		cmd := start()
		relaytest.Eventually(t, 30*time.Second, "more notices stored before kill "+fmt.Sprint(kill+1), func() bool {
			return stored() > before
		})
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	close(stop)
	ids := <-submitted
	cmd := start()
	relaytest.Eventually(t, 60*time.Second, fmt.Sprintf("all %d notices stored", len(ids)), func() bool { return stored() >= len(ids) })
	// Every delivery acknowledged: the relay says so for each notice.
	relaytest.Eventually(t, 30*time.Second, "every delivery acknowledged", func() bool {
		for _, id := range ids {
			if st := r.Status("examplenet", id)["status"]; st != "acknowledged" {
				return false
			}
		}
		return true
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the station did not stop cleanly: %v", err)
	}

	s, err := station.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.Inbox(context.Background(), station.Filter{}, 100*n)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, row := range rows {
		seen[row.Reference]++
	}
	for i := range ids {
		if ref := fmt.Sprintf("KILL-%03d", i); seen[ref] != 1 {
			t.Errorf("%s shown %d times, want once", ref, seen[ref])
		}
	}
	if len(rows) != len(ids) {
		t.Errorf("the inbox lists %d notices, want %d", len(rows), len(ids))
	}
	for _, id := range ids {
		nt, err := s.Notice(context.Background(), id)
		if err != nil {
			t.Fatalf("notice %s: %v", id, err)
		}
		if len(nt.Deliveries) != 1 || nt.Forwarded.Suspicion == "" {
			t.Errorf("notice %s: %d deliveries, suspicion %q", id, len(nt.Deliveries), nt.Forwarded.Suspicion)
		}
	}
}
