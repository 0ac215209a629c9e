package relaytest

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/noticerelay/noticerelay/pkg/config"
	"github.com/noticerelay/noticerelay/pkg/embedded"
	"github.com/noticerelay/noticerelay/pkg/relay"
)

// Cluster starts a 3-node NATS cluster in this process (routes and
// JetStream, random 127.0.0.1 ports, stores in the test's temp dir) and
// stops it when the test ends. Pass its URL() as Options.NATSURL; start
// the cluster before the relays, so that it stops after them.
func Cluster(t testing.TB) *embedded.Cluster {
	t.Helper()
	c, err := embedded.StartCluster(embedded.ClusterOptions{DataDir: t.TempDir(), DefaultSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// OnCluster returns the options of a relay on cluster c that shares one
// pseudonym key file with every relay started with them, as the processes
// of a deployment do.
func OnCluster(t testing.TB, c *embedded.Cluster) Options {
	t.Helper()
	key := filepath.Join(t.TempDir(), "pseudonym.key")
	if err := relay.WritePseudonymKey(key); err != nil {
		t.Fatal(err)
	}
	return Options{NATSURL: c.URL(), Config: func(cfg *config.Config) { cfg.Audit.PseudonymKey = key }}
}

// JetStream takes what a connect returns (a server's or a cluster's
// Connect, or nats.Connect) and gives the JetStream context of that
// connection, closed when the test ends:
//
//	js := relaytest.JetStream(t)(c.Connect("name"))
func JetStream(t testing.TB) func(*nats.Conn, error) jetstream.JetStream {
	return func(nc *nats.Conn, err error) jetstream.JetStream {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
}
