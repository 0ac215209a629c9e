package relaytest

import (
	"testing"

	"github.com/noticerelay/noticerelay/pkg/embedded"
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
