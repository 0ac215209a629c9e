package natsauth_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/cli"
	"github.com/noticerelay/noticerelay/pkg/delivery"
	"github.com/noticerelay/noticerelay/pkg/natsauth"
	"github.com/noticerelay/noticerelay/pkg/stream"
)

const shipped = "../../deploy/nats/noticerelay.conf"

// The shipped configuration is what the generator makes for the demo
// authorities; regenerate it with `go run . deliveries nats-config`.
func TestShippedConfigIsGenerated(t *testing.T) {
	b, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != natsauth.Render(cli.DemoAuthorityIDs()) {
		t.Fatalf("%s is stale: run `go run . deliveries nats-config > deploy/nats/noticerelay.conf`", shipped)
	}
}

// natsServer builds the nats-server of go.mod's version once (cached under
// os.TempDir by version) and returns its path.
func natsServer(t *testing.T) string {
	t.Helper()
	v, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dir := filepath.Join(os.TempDir(), "noticerelay-nats-server-"+strings.TrimSpace(string(v)))
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	if out, err := exec.Command("go", "build", "-o", tmp, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// startShipped runs nats-server with the shipped configuration on a free
// port and returns its URL and the password of every user.
func startShipped(t *testing.T) (string, map[string]string) {
	t.Helper()
	url, passwords, _ := startShippedWithLog(t)
	return url, passwords
}

// startShippedWithLog is startShipped that also returns the path of the
// server's log, which records every permissions violation.
func startShippedWithLog(t *testing.T) (string, map[string]string, string) {
	t.Helper()
	bin := natsServer(t)
	conf, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	text := strings.Replace(string(conf), "listen: 127.0.0.1:4222", "listen: "+addr, 1)
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	env := append(os.Environ(), "NR_NATS_STORE_KEY=test-store-key-0123456789abcdef0123456789")
	for _, m := range regexp.MustCompile(`user: "([a-z0-9-]+)"`).FindAllStringSubmatch(text, -1) {
		passwords[m[1]] = "pw-" + m[1]
		env = append(env, natsauth.PasswordVar(m[1])+"=pw-"+m[1])
	}
	cmd := exec.Command(bin, "-c", "nats.conf")
	cmd.Dir, cmd.Env = dir, env
	out, _ := os.Create(filepath.Join(dir, "server.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
	})
	url := "nats://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("nats-server did not start: %s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return url, passwords, filepath.Join(dir, "server.log")
}

// violations collects the asynchronous errors of a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
}

func (v *violations) has(substr string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The DE user of the shipped configuration consumes DE's queue and is
// refused FR's and every other stream; relay service users are confined
// to what their service uses.
func TestShippedNATSPermissions(t *testing.T) {
	url, pw := startShipped(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	connect := func(user string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		nc, err := nats.Connect(url, append([]nats.Option{nats.UserInfo(user, pw[user])}, opts...)...)
		if err != nil {
			t.Fatalf("connect %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}

	// The relay's own users set the stage: inbox ensures the streams and
	// the consumers, routing queues one delivery for DE and one for FR.
	_, inboxJS := connect("relay-inbox")
	if err := stream.Ensure(ctx, inboxJS, stream.Topology{Replicas: 1, Retention: time.Hour}); err != nil {
		t.Fatalf("relay-inbox ensuring streams: %v", err)
	}
	for _, a := range []string{"de-police", "fr-police"} {
		for _, p := range delivery.Priorities() {
			_, err := inboxJS.CreateOrUpdateConsumer(ctx, stream.Deliveries, jetstream.ConsumerConfig{
				Durable: delivery.ConsumerName(a, p), FilterSubject: stream.DeliveryFilter(a, p),
				AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
			if err != nil {
				t.Fatalf("relay-inbox creating consumer: %v", err)
			}
		}
	}
	_, routingJS := connect("relay-routing")
	for _, a := range []string{"de-police", "fr-police"} {
		if _, err := routingJS.Publish(ctx, stream.DeliverySubject(a, "urgent", "d-"+a), []byte(`{"v":1,"id":"d-`+a+`"}`)); err != nil {
			t.Fatalf("relay-routing publishing: %v", err)
		}
	}

	// DE consumes its own queue, with its own reply prefix.
	var v violations
	de, deJS := connect("de-police", nats.CustomInboxPrefix(natsauth.InboxPrefix("de-police")), nats.ErrorHandler(v.handler))
	c, err := deJS.Consumer(ctx, stream.Deliveries, delivery.ConsumerName("de-police", "urgent"))
	if err != nil {
		t.Fatalf("DE consumer info: %v", err)
	}
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Subject())
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("DE ack: %v", err)
		}
	}
	if len(got) != 1 || got[0] != stream.DeliverySubject("de-police", "urgent", "d-de-police") {
		t.Fatalf("DE got %v", got)
	}

	// FR's consumer: the call times out, the violation arrives through the
	// error handler.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	_, err = deJS.Consumer(short, stream.Deliveries, delivery.ConsumerName("fr-police", "urgent"))
	cancelShort()
	if err == nil {
		t.Fatal("DE read FR's consumer")
	}
	waitFor(t, "violation on FR's consumer", func() bool { return v.has("inbox-fr-police-urgent") })
	// Pulling FR's messages directly.
	_ = de.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.NR_DELIVERIES.inbox-fr-police-urgent", de.NewInbox(), []byte(`{"batch":1}`))
	waitFor(t, "violation on FR's queue", func() bool { return v.has("MSG.NEXT.NR_DELIVERIES.inbox-fr-police-urgent") })
	// Every other stream, and the raw subjects.
	for _, s := range []string{stream.Notices, stream.Events, stream.Dead, stream.Deliveries} {
		short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
		if _, err := deJS.Stream(short, s); err == nil {
			t.Errorf("DE read stream %s", s)
		}
		cancelShort()
		waitFor(t, "violation on stream "+s, func() bool { return v.has("STREAM.INFO." + s) })
	}
	if _, err := de.SubscribeSync("nr.>"); err == nil {
		_ = de.Flush()
	}
	waitFor(t, "violation subscribing nr.>", func() bool { return v.has("nr.>") })
	if _, err := de.SubscribeSync("_INBOX_fr-police.>"); err == nil {
		_ = de.Flush()
	}
	waitFor(t, "violation on FR's reply prefix", func() bool { return v.has("_INBOX_fr-police") })

	// A service user cannot read what its service does not use: intake
	// never reads deliveries.
	var iv violations
	intake, _ := connect("relay-intake", nats.ErrorHandler(iv.handler))
	_ = intake.PublishRequest("$JS.API.DIRECT.GET.NR_DELIVERIES.nr.delivery.fr-police.urgent.d-fr-police", intake.NewInbox(), nil)
	waitFor(t, "violation of relay-intake", func() bool { return iv.has("NR_DELIVERIES") })
}
