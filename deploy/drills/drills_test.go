package drills

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/relaytest"
)

// envVar turns the drills on; .ci/run sets it once the deployment is up.
const envVar = "NR_DRILLS"

// The deployment as docker-compose.yml publishes it on the host.
var (
	relayURLs = []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081"}
	natsURL   = "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
	natsNodes = []string{"nats-1", "nats-2", "nats-3"}
	// monitoring port of each node on the host
	natsMonitor = map[string]string{"nats-1": "http://127.0.0.1:8222", "nats-2": "http://127.0.0.1:8223", "nats-3": "http://127.0.0.1:8224"}
	// the compose network a partitioned node is cut off from
	network = "noticerelay"
	// the Member States whose authorities the bench drains
	drained = []string{"DE", "ES", "FR", "IT", "PL"}
)

func TestMain(m *testing.M) {
	if os.Getenv(envVar) != "1" {
		fmt.Fprintf(os.Stderr, "\n"+
			"################################################################################\n"+
			"# deploy/drills: the FAULT DRILLS DID NOT RUN (%s is not 1).                  #\n"+
			"# They need the compose deployment; .ci/run brings it up and runs them.       #\n"+
			"# By hand: go run ./deploy/build && docker compose up --build -d, then        #\n"+
			"#   %s=1 go test -count=1 -v -timeout 30m ./deploy/drills                   #\n"+
			"################################################################################\n\n", envVar, envVar)
	}
	os.Exit(m.Run())
}

// drill is one fault, injected while the bench runs and healed by inject
// itself before it returns.
type drill struct {
	name string
	// load is how long the bench submits; the fault starts after
	// faultAfter and must be over before the load ends.
	load, faultAfter time.Duration
	inject           func(t *testing.T, d *deployment)
}

var drills = []drill{
	{name: "stream leader killed", load: 60 * time.Second, faultAfter: 10 * time.Second, inject: leaderKilled},
	{name: "rolling restart, lame duck", load: 150 * time.Second, faultAfter: 10 * time.Second, inject: rollingRestart},
	{name: "relay killed", load: 60 * time.Second, faultAfter: 10 * time.Second, inject: relayKilled},
	{name: "quorum lost and regained", load: 70 * time.Second, faultAfter: 10 * time.Second, inject: quorumLost},
	{name: "leader partitioned", load: 60 * time.Second, faultAfter: 10 * time.Second, inject: partitioned},
}

// row is what a drill measured.
type row struct {
	name                                      string
	notices, deliveries, retried, redelivered int
	stallMS, acceptP99MS                      float64
	lost, misrouted, duplicates               int
	verified                                  string
	took                                      time.Duration
}

func TestDrills(t *testing.T) {
	if os.Getenv(envVar) != "1" {
		t.Skipf("the fault drills need the compose deployment and %s=1 (see the banner above; .ci/run runs them)", envVar)
	}
	d := newDeployment(t)
	d.waitHealthy(t, 3*time.Minute)
	// .ci/run has just brought the deployment up: both relays must have
	// been ready within a minute of it.
	if os.Getenv("NR_DRILLS_FRESH") == "1" {
		ready := d.startup(t)
		t.Logf("both relays ready %.1f s after docker compose up", ready.Seconds())
		if ready > time.Minute {
			t.Errorf("both relays ready only %.1f s after docker compose up, want under a minute", ready.Seconds())
		}
	}
	began := time.Now()
	var rows []*row
	for _, dr := range drills {
		r := &row{name: dr.name}
		rows = append(rows, r)
		if !t.Run(dr.name, func(t *testing.T) { d.run(t, dr, r) }) {
			// Heal whatever the failed drill left, so that the next one
			// starts from a whole deployment.
			d.heal(t)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| drill | notices | stall (s) | accept p99 (ms) | retried | redelivered | lost | misrouted | duplicate ids | audit verify | took (s) |\n")
	fmt.Fprintf(&b, "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --- | --: |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.0f | %d | %d | %d | %d | %d | %s | %.0f |\n", r.name, r.notices, r.stallMS/1000,
			r.acceptP99MS, r.retried, r.redelivered, r.lost, r.misrouted, r.duplicates, r.verified, r.took.Seconds())
	}
	fmt.Fprintf(&b, "\nall drills: %.0f s\n", time.Since(began).Seconds())
	t.Log(b.String())
}

// run runs one drill: the bench through both relays, the fault, then the
// guarantees and the audit log.
func (d *deployment) run(t *testing.T, dr drill, r *row) {
	start := time.Now()
	defer func() { r.took = time.Since(start) }()
	var args []string
	args = append(args, "bench", "--url", strings.Join(relayURLs, ","), "--platform-token", d.tokens["NR_PLATFORM_TOKEN"])
	var auth []string
	for _, cc := range drained {
		auth = append(auth, cc+"="+d.tokens["NR_TOKEN_"+cc])
	}
	// A seed of its own: the references (and so the notices) are new even
	// against a deployment that already ran the drills.
	args = append(args, "--authority-tokens", strings.Join(auth, ","), "--rate", "40", "--clients", "64",
		"--duration", dr.load.String(), "--drain-timeout", "4m", "--seed", strconv.FormatInt(time.Now().UnixNano(), 10))
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Main(t.Context(), args, &stdout, &stderr) }()

	select {
	case <-time.After(dr.faultAfter):
	case code := <-done:
		t.Fatalf("the bench ended before the fault (exit %d): %s", code, stderr.String())
	}
	t.Logf("%s: injecting the fault", dr.name)
	dr.inject(t, d)
	if over := time.Since(start); over > dr.load {
		// The guarantees still hold; the stall may read short.
		t.Logf("WARNING: the fault lasted until %.0f s, after the load's %.0f s: lengthen the drill's load", over.Seconds(), dr.load.Seconds())
	}
	t.Logf("%s: fault healed after %.0f s; waiting for the bench to drain", dr.name, time.Since(start).Seconds())
	code := <-done
	var res struct {
		Notices, Deliveries, Retried, Redelivered int
		Lost, Misrouted                           int
		Duplicates                                int     `json:"duplicate_delivery_ids"`
		StallMS                                   float64 `json:"stall_ms"`
		AcceptP99MS                               float64 `json:"accept_p99_ms"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bench (exit %d) printed no result: %v\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
	t.Logf("bench: %s", strings.TrimSpace(stdout.String()))
	r.notices, r.deliveries, r.retried, r.redelivered = res.Notices, res.Deliveries, res.Retried, res.Redelivered
	r.stallMS, r.acceptP99MS = res.StallMS, res.AcceptP99MS
	r.lost, r.misrouted, r.duplicates = res.Lost, res.Misrouted, res.Duplicates
	if code != cli.ExitOK || res.Lost != 0 || res.Misrouted != 0 || res.Duplicates != 0 || res.Notices == 0 {
		t.Errorf("bench exit %d: %d notices, %d lost, %d misrouted, %d duplicate delivery ids; stderr: %s",
			code, res.Notices, res.Lost, res.Misrouted, res.Duplicates, stderr.String())
	}
	d.waitHealthy(t, 2*time.Minute)
	r.verified = d.auditVerify(t)
}

// auditVerify runs `noticerelay audit verify` against the cluster once and
// returns the table's word for it. It must pass the first time: the audit
// reader tolerates leader changes and transient errors on a cluster (issue
// 10, finding 5; pkg/audit's cluster test runs it 10 times on 250,000
// leaves), so a read error right after a fault is a failure too.
func (d *deployment) auditVerify(t *testing.T) string {
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), []string{"audit", "verify", "--nats", natsURL, "--verifier-key", d.tokens["NR_AUDIT_VERIFIER_KEY"]}, &stdout, &stderr)
	verdict := strings.TrimSpace(stdout.String())
	switch {
	case code == cli.ExitOK:
		t.Logf("audit verify: %s", verdict)
		return "passed"
	case verdict != "":
		t.Errorf("audit verify: the log is not intact: %s %s", verdict, stderr.String())
		return "FAILED"
	default:
		t.Errorf("audit verify could not read the log (exit %d): %s", code, strings.TrimSpace(stderr.String()))
		return "FAILED (read error)"
	}
}

// leaderKilled kills the node leading NR_NOTICES (SIGKILL), waits until
// another node leads it, and starts the node again.
func leaderKilled(t *testing.T, d *deployment) {
	leader := d.streamLeader(t, "NR_NOTICES")
	t.Logf("NR_NOTICES leader %s: docker kill", leader)
	d.docker(t, "kill", d.container(t, leader))
	relaytest.Eventually(t, 30*time.Second, "a new NR_NOTICES leader", func() bool {
		l, err := d.leader("NR_NOTICES")
		return err == nil && l != "" && l != leader
	})
	time.Sleep(5 * time.Second) // the node stays down a while longer
	d.docker(t, "start", d.container(t, leader))
	d.waitNode(t, leader, 90*time.Second)
}

// rollingRestart restarts every node in turn the way docs/operations.md
// says: a lame-duck stop (the containers' stop signal is SIGUSR2), a start,
// and the next node only once this one is healthy again.
func rollingRestart(t *testing.T, d *deployment) {
	for _, n := range natsNodes {
		t.Logf("%s: lame-duck restart", n)
		d.docker(t, "restart", "-t", "60", d.container(t, n))
		d.waitNode(t, n, 90*time.Second)
	}
}

// relayKilled kills relay-1 (SIGKILL) with deliveries leased and
// submissions in flight, and starts it again.
func relayKilled(t *testing.T, d *deployment) {
	d.docker(t, "kill", d.container(t, "relay-1"))
	time.Sleep(10 * time.Second) // the relay stays down
	d.docker(t, "start", d.container(t, "relay-1"))
	d.waitReady(t, relayURLs[0], 90*time.Second)
}

// quorumLost kills two of the three nodes (the NR_NOTICES leader and one
// more), keeps them down, and starts them again.
func quorumLost(t *testing.T, d *deployment) {
	leader := d.streamLeader(t, "NR_NOTICES")
	other := natsNodes[0]
	for _, n := range natsNodes {
		if n != leader {
			other = n
			break
		}
	}
	t.Logf("killing %s (NR_NOTICES leader) and %s", leader, other)
	d.docker(t, "kill", d.container(t, leader), d.container(t, other))
	killed := time.Now()
	// Both relays say they are not ready (contract section 10: within 5 s
	// of the outage; one more for the probe's own round trip).
	for _, u := range relayURLs {
		relaytest.Eventually(t, 6*time.Second-time.Since(killed), u+"/readyz 503 without quorum", func() bool {
			code, _ := d.status(u + "/readyz")
			return code == http.StatusServiceUnavailable
		})
	}
	time.Sleep(15*time.Second - time.Since(killed)) // JetStream has no quorum
	d.docker(t, "start", d.container(t, leader), d.container(t, other))
	d.waitNode(t, leader, 90*time.Second)
	d.waitNode(t, other, 90*time.Second)
}

// partitioned cuts the NR_NOTICES leader off the network (the relays and
// the other nodes can no longer reach it, nor it them), and reconnects it.
func partitioned(t *testing.T, d *deployment) {
	leader := d.streamLeader(t, "NR_NOTICES")
	t.Logf("disconnecting %s (NR_NOTICES leader) from network %s", leader, network)
	d.docker(t, "network", "disconnect", network, d.container(t, leader))
	time.Sleep(15 * time.Second) // the partition lasts
	d.docker(t, "network", "connect", "--alias", leader, network, d.container(t, leader))
	d.waitNode(t, leader, 90*time.Second)
}

// deployment is the running compose project.
type deployment struct {
	project string
	tokens  map[string]string
	mu      sync.Mutex
	ids     map[string]string // service -> container id
	client  *http.Client
}

func newDeployment(t *testing.T) *deployment {
	d := &deployment{project: os.Getenv("COMPOSE_PROJECT_NAME"), ids: map[string]string{}, client: &http.Client{Timeout: 5 * time.Second}}
	if d.project == "" {
		d.project = "noticerelay" // .env
	}
	// The init service prints the demo tokens and the verifier key as
	// shell lines at every start.
	out := d.docker(t, "logs", d.container(t, "init"))
	d.tokens = map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (NR_[A-Z_]+)=(\S+)$`).FindAllStringSubmatch(out, -1) {
		d.tokens[m[1]] = m[2]
	}
	if d.tokens["NR_PLATFORM_TOKEN"] == "" || d.tokens["NR_AUDIT_VERIFIER_KEY"] == "" {
		t.Fatalf("no tokens in the init service's output: %q", out)
	}
	return d
}

// docker runs the docker CLI and returns its standard output.
func (d *deployment) docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// container returns the id of the compose service's container.
func (d *deployment) container(t *testing.T, service string) string {
	t.Helper()
	d.mu.Lock()
	id := d.ids[service]
	d.mu.Unlock()
	if id != "" {
		return id
	}
	out := strings.Fields(d.docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+d.project,
		"--filter", "label=com.docker.compose.service="+service, "--filter", "label=com.docker.compose.oneoff=False"))
	if len(out) != 1 {
		t.Fatalf("compose project %s: want one container of service %s, found %q (is the deployment up?)", d.project, service, out)
	}
	d.mu.Lock()
	d.ids[service] = out[0]
	d.mu.Unlock()
	return out[0]
}

// get answers whether url answers 200.
func (d *deployment) get(url string) bool {
	code, _ := d.status(url)
	return code == http.StatusOK
}

// status returns the HTTP status of a GET of url.
func (d *deployment) status(url string) (int, error) {
	resp, err := d.client.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitNode waits until a node's monitoring /healthz answers 200: it is up,
// and JetStream on it is current.
func (d *deployment) waitNode(t *testing.T, node string, within time.Duration) {
	t.Helper()
	relaytest.Eventually(t, within, node+" healthy", func() bool { return d.get(natsMonitor[node] + "/healthz") })
}

// waitReady waits until a relay's /readyz answers 200.
func (d *deployment) waitReady(t *testing.T, url string, within time.Duration) {
	t.Helper()
	relaytest.Eventually(t, within, url+" ready", func() bool { return d.get(url + "/readyz") })
}

// waitHealthy waits until every node is healthy and both relays are ready.
func (d *deployment) waitHealthy(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, n := range natsNodes {
		d.waitNode(t, n, time.Until(deadline))
	}
	for _, u := range relayURLs {
		d.waitReady(t, u, time.Until(deadline))
	}
}

// heal starts every container again and reconnects any that a failed
// drill left off the network.
func (d *deployment) heal(t *testing.T) {
	for _, s := range append(append([]string{}, natsNodes...), "relay-1", "relay-2") {
		id := d.container(t, s)
		nets := d.docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", id)
		if !strings.Contains(nets, network) {
			d.docker(t, "network", "connect", "--alias", s, network, id)
		}
		d.docker(t, "start", id)
	}
	d.waitHealthy(t, 3*time.Minute)
}

// startup is how long the deployment took to be ready: from the creation
// of its first container (docker compose up) to the later of the two
// relays' first "relay ready" log line (its listener open, its services
// started), read after the fact so that the time go test takes to start
// does not count.
func (d *deployment) startup(t *testing.T) time.Duration {
	t.Helper()
	var first time.Time
	for _, s := range append(append([]string{"init"}, natsNodes...), "relay-1", "relay-2") {
		out := strings.TrimSpace(d.docker(t, "inspect", "-f", "{{.Created}}", d.container(t, s)))
		c, err := time.Parse(time.RFC3339Nano, out)
		if err != nil {
			t.Fatalf("created time of %s: %v", s, err)
		}
		if first.IsZero() || c.Before(first) {
			first = c
		}
	}
	var ready time.Time
	for _, s := range []string{"relay-1", "relay-2"} {
		// The relay logs JSON on stderr; the CLI passes it on as stderr.
		cmd := exec.CommandContext(t.Context(), "docker", "logs", d.container(t, s))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker logs %s: %v: %s", s, err, out)
		}
		var at time.Time
		for _, line := range strings.Split(string(out), "\n") {
			var l struct{ Msg, TS string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "relay ready" {
				at, err = time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
				if err != nil {
					t.Fatalf("%s: relay ready at %q: %v", s, l.TS, err)
				}
				break
			}
		}
		if at.IsZero() {
			t.Fatalf("%s logged no \"relay ready\"", s)
		}
		if at.After(ready) {
			ready = at
		}
	}
	return ready.Sub(first)
}

// leader returns the server name of the stream's leader ("" if none).
func (d *deployment) leader(name string) (string, error) {
	nc, err := nats.Connect(natsURL, nats.Name("drills"), nats.Timeout(2*time.Second))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return "", err
	}
	if c := s.CachedInfo().Cluster; c != nil {
		return c.Leader, nil
	}
	return "", nil
}

func (d *deployment) streamLeader(t *testing.T, name string) string {
	t.Helper()
	var l string
	relaytest.Eventually(t, 30*time.Second, name+" has a leader", func() bool {
		var err error
		l, err = d.leader(name)
		return err == nil && l != ""
	})
	return l
}
