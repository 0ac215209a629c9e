package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKillDuringFlowLosesNothing builds the real binary, runs `dev`, kills
// it with SIGKILL while platforms are submitting and authorities are
// pulling, restarts it on the same data dir and checks that every accepted
// notice reaches each of its recipients under exactly one delivery id, and
// ends acknowledged.
func TestKillDuringFlowLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	authorities := map[string]string{"AT": "at-police", "DE": "de-bka", "FR": "fr-police", "EU": "europol"}
	dev := newDev(t, authorities)
	base, start := dev.base, dev.start
	client := &http.Client{Timeout: 10 * time.Second}
	type sub struct {
		ref, want string
		body      []byte
	}
	countries := []string{"AT", "DE", "FR"}
	var subs []sub
	for i := range 400 {
		c1, c2 := countries[i%3], countries[(i+1)%3]
		n := map[string]any{"reference": fmt.Sprintf("KILL-%04d", i), "category": "threat_to_life",
			"imminent_threat": i%5 == 0, "suspicion": "threat posted in a public thread",
			"locations": []any{map[string]any{"country": c1}}, "victims": []any{map[string]any{"country": c2}}}
		body, _ := json.Marshal(n)
		subs = append(subs, sub{ref: n["reference"].(string), body: body})
	}
	post := func(s sub) (int, string) {
		req, _ := http.NewRequest("POST", base+"/v1/notices", bytes.NewReader(s.body))
		req.Header.Set("Authorization", "Bearer platform-token-p1-xxxx")
		resp, err := client.Do(req)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		var a struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a.ID
	}

	cmd := start()
	var mu sync.Mutex
	accepted := map[string]string{} // reference -> id, for every 202 or 200
	var wg sync.WaitGroup
	next := make(chan sub)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				code, id := post(s)
				if code == 202 || code == 200 {
					mu.Lock()
					accepted[s.ref] = id
					mu.Unlock()
				}
			}
		}()
	}
	// Authorities pull (and ack half of what they get) while platforms
	// submit; every delivery id handed out is recorded per (authority,
	// notice), across the crash.
	seen := map[string]map[string]string{} // authority -> notice -> delivery id
	record := func(a string, d delivery) {
		mu.Lock()
		defer mu.Unlock()
		if seen[a] == nil {
			seen[a] = map[string]string{}
		}
		if prev, ok := seen[a][d.NoticeID]; ok && prev != d.ID {
			t.Errorf("%s got notice %s under two delivery ids: %s and %s", a, d.NoticeID, prev, d.ID)
		}
		seen[a][d.NoticeID] = d.ID
	}
	stopPull := make(chan struct{})
	var pullWG sync.WaitGroup
	for _, a := range authorities {
		pullWG.Add(1)
		go func() {
			defer pullWG.Done()
			for {
				select {
				case <-stopPull:
					return
				default:
				}
				ds, err := inbox[delivery](client, base, a)
				if err == nil {
					for i, d := range ds {
						record(a, d)
						if i%2 == 0 {
							_ = ack(client, base, a, d.ID)
						}
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	for i, s := range subs {
		if i == len(subs)/2 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
		next <- s
	}
	close(next)
	wg.Wait()
	close(stopPull)
	pullWG.Wait()
	mu.Lock()
	before := len(accepted)
	mu.Unlock()
	t.Logf("accepted before and around the kill: %d of %d", before, len(subs))

	cmd = start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	// The platform retries everything it has no answer for; what it has an
	// answer for must be there with the same id.
	for _, s := range subs {
		code, id := post(s)
		if code != 202 && code != 200 {
			t.Fatalf("resubmit %s: %d", s.ref, code)
		}
		if prev, ok := accepted[s.ref]; ok {
			if code != 200 || id != prev {
				t.Fatalf("%s was accepted as %s before the crash, now %d %s", s.ref, prev, code, id)
			}
		}
		accepted[s.ref] = id
	}
	// Drain every inbox, acknowledging everything, until every accepted
	// notice is acknowledged by both its recipients.
	pending := map[string]string{}
	for ref, id := range accepted {
		pending[ref] = id
	}
	deadline := time.Now().Add(120 * time.Second)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d notices not acknowledged after restart", len(pending))
		}
		for _, a := range []string{"at-police", "de-bka", "fr-police"} {
			ds, err := inbox[delivery](client, base, a)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				record(a, d)
				if err := ack(client, base, a, d.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		for ref, id := range pending {
			if status(t, client, base, id) == "acknowledged" {
				delete(pending, ref)
			}
		}
	}
	pairs := 0
	for _, m := range seen {
		pairs += len(m)
	}
	if pairs != 2*len(subs) {
		t.Errorf("%d (authority, notice) pairs handed out, want %d", pairs, 2*len(subs))
	}
	if ds, _ := inbox[delivery](client, base, "europol"); len(ds) != 0 {
		t.Errorf("europol got %d deliveries", len(ds))
	}
}

// TestBenchThroughKill runs `bench --url` against a real `dev` process,
// kills the relay with SIGKILL in the middle of the run and restarts it on
// the same data dir: the bench keeps going (platforms and authorities
// retry) and its own books must show every accepted notice acknowledged by
// each recipient it concerns, under one delivery id per pair.
func TestBenchThroughKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	authorities := map[string]string{"AT": "at-police", "DE": "de-police", "FR": "fr-police", "PL": "pl-police"}
	dev := newDev(t, authorities)
	base, bin := dev.base, dev.bin
	var tokens []string
	for cc, id := range authorities {
		tokens = append(tokens, cc+"=authority-token-"+id)
	}
	relay := dev.start()
	defer func() { _ = relay.Process.Signal(syscall.SIGTERM); _ = relay.Wait() }()

	const notices = 3000
	var out, errOut bytes.Buffer
	benchCmd := exec.Command(bin, "bench", "--url", base, "--platform-token", "platform-token-p1-xxxx",
		"--authority-tokens", strings.Join(tokens, ","), "--notices", fmt.Sprint(notices), "--clients", "16",
		"--drain-timeout", "2m")
	benchCmd.Stdout, benchCmd.Stderr = &out, &errOut
	if err := benchCmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill the relay once it has accepted a few hundred notices.
	deadline := time.Now().Add(60 * time.Second)
	for accepted202(base) < 300 {
		if time.Now().After(deadline) {
			t.Fatal("the bench did not get going")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := accepted202(base); got >= notices {
		t.Fatalf("the relay accepted all %d notices before the kill", got)
	}
	_ = relay.Process.Signal(syscall.SIGKILL)
	_ = relay.Wait()
	time.Sleep(500 * time.Millisecond) // the bench meets a dead relay
	relay = dev.start()

	if err := benchCmd.Wait(); err != nil {
		t.Fatalf("bench: %v\n%s%s", err, out.String(), errOut.String())
	}
	var res struct {
		Notices, Deliveries, Lost, Misrouted int
		Retried, Redelivered                 int
		Dup                                  int `json:"duplicate_delivery_ids"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bench output %q: %v", out.String(), err)
	}
	t.Logf("bench through a kill: %s", bytes.TrimSpace(out.Bytes()))
	if res.Notices != notices || res.Lost != 0 || res.Misrouted != 0 || res.Dup != 0 {
		t.Fatalf("after a kill -9: %+v, want all %d notices, nothing lost, misrouted or under two ids", res, notices)
	}
	if res.Retried == 0 {
		t.Fatalf("the bench never met the dead relay: %+v", res)
	}
	if res.Deliveries < notices {
		t.Fatalf("%d deliveries acknowledged for %d notices", res.Deliveries, notices)
	}
}

// devProcess is `noticerelay dev` as the tests run it: the real binary,
// on a data dir of its own, with platforms p1 and p2 (tokens
// platform-token-p1-xxxx and platform-token-p2-xxxx), the authorities given
// (country to id, token authority-token-<id>) and a 3 s lease.
type devProcess struct {
	t                    *testing.T
	bin, cfg, data, base string
	// env is added to the relay's environment, stderr takes its log
	// (nil: discarded).
	env    []string
	stderr io.Writer
}

func newDev(t *testing.T, authorities map[string]string) *devProcess {
	t.Helper()
	return newDevPlatforms(t, authorities, "p1", "p2")
}

// newDevPlatforms is newDev with the platforms given (token
// platform-token-<id>-xxxx each).
func newDevPlatforms(t *testing.T, authorities map[string]string, platforms ...string) *devProcess {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	d := &devProcess{t: t, bin: buildRelay(t), cfg: filepath.Join(dir, "config.yaml"), data: filepath.Join(dir, "data"),
		base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	var b bytes.Buffer
	fmt.Fprintf(&b, "inbox:\n  lease: 3s\nhttp:\n  listen: 127.0.0.1:%d\nplatforms:\n", port)
	for _, p := range platforms {
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    tokens: [\"platform-token-%s-xxxx\"]\n    establishment: IE\n", p, p, p)
	}
	b.WriteString("authorities:\n")
	for cc, id := range authorities {
		fmt.Fprintf(&b, "  - id: %s\n    country: %s\n    name: %s\n    tokens: [\"authority-token-%s\"]\n", id, cc, id, id)
	}
	if err := os.WriteFile(d.cfg, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs the relay and returns once it is ready.
func (d *devProcess) start() *exec.Cmd {
	d.t.Helper()
	cmd := exec.Command(d.bin, "dev", "--config", d.cfg, "--data", d.data)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if d.stderr != nil {
		cmd.Stderr = d.stderr
	}
	if d.env != nil {
		cmd.Env = append(os.Environ(), d.env...)
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(d.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatal("relay not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// accepted202 reads how many notices the relay answered 202 since it
// started, from its metrics; 0 when it cannot be reached.
func accepted202(base string) int {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `noticerelay_intake_answers_total{status="202"} `); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}

var relayBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildRelay builds the noticerelay binary once for the tests of this
// package.
func buildRelay(t *testing.T) string {
	t.Helper()
	relayBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "noticerelay-bin-")
		if err != nil {
			relayBinary.err = err
			return
		}
		relayBinary.path = filepath.Join(dir, "noticerelay")
		relayBinary.out, relayBinary.err = exec.Command("go", "build", "-o", relayBinary.path, ".").CombinedOutput()
	})
	if relayBinary.err != nil {
		t.Fatalf("build: %v\n%s", relayBinary.err, relayBinary.out)
	}
	return relayBinary.path
}

// TestMain removes the binary the tests built. With NR_HOSTILE_ATTACK set,
// the test binary is TestHostileLoad's attacking process instead.
func TestMain(m *testing.M) {
	if base := os.Getenv(attackEnv); base != "" {
		os.Exit(runAttack(base))
	}
	code := m.Run()
	if relayBinary.path != "" {
		_ = os.RemoveAll(filepath.Dir(relayBinary.path))
	}
	os.Exit(code)
}

type delivery struct {
	ID       string `json:"id"`
	NoticeID string `json:"notice_id"`
}

// inbox fetches up to 100 deliveries of authority, each decoded as a T.
func inbox[T any](c *http.Client, base, authority string) ([]T, error) {
	req, _ := http.NewRequest("GET", base+"/v1/inbox?max=100", nil)
	req.Header.Set("Authorization", "Bearer authority-token-"+authority)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("inbox: %d", resp.StatusCode)
	}
	var out struct{ Deliveries []T }
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out.Deliveries, err
}

func ack(c *http.Client, base, authority, id string) error {
	req, _ := http.NewRequest("POST", base+"/v1/inbox/"+id+"/ack", nil)
	req.Header.Set("Authorization", "Bearer authority-token-"+authority)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		return fmt.Errorf("ack %s: %d", id, resp.StatusCode)
	}
	return nil
}

func status(t *testing.T, c *http.Client, base, id string) string {
	req, _ := http.NewRequest("GET", base+"/v1/notices/"+id, nil)
	req.Header.Set("Authorization", "Bearer platform-token-p1-xxxx")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Status string }
	_ = json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&v)
	return v.Status
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
