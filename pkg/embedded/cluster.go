package embedded

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterOptions configure an in-process NATS cluster.
type ClusterOptions struct {
	// DataDir holds each node's store, under DataDir/n1, n2, ...
	DataDir string
	// Size is the number of nodes (default 3).
	Size int
	// DefaultSync turns off fsync on every write, as in Options.
	DefaultSync bool
}

// Cluster is a NATS cluster of Size nodes running in this process, with
// routes between them and JetStream on each, listening for clients on
// 127.0.0.1 ports chosen at random. Tests use it to run the relay and its
// tools against a real cluster: leader elections, stepdowns and node
// restarts behave as in production.
type Cluster struct {
	opts  ClusterOptions
	mu    sync.Mutex
	nodes []*Server // nil while a node is stopped
	opt   []*server.Options
}

// StartCluster starts the cluster and waits until every node sees the
// others and JetStream has a meta leader.
func StartCluster(o ClusterOptions) (*Cluster, error) {
	if o.Size == 0 {
		o.Size = 3
	}
	ports, err := freePorts(2 * o.Size)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: o, nodes: make([]*Server, o.Size), opt: make([]*server.Options, o.Size)}
	var routes []string
	for i := range o.Size {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[2*i+1]))
	}
	for i := range o.Size {
		opts := nodeOptions(o.DefaultSync)
		opts.ServerName = nodeName(i)
		opts.StoreDir = filepath.Join(o.DataDir, nodeName(i), "jetstream")
		opts.Host, opts.Port = "127.0.0.1", ports[2*i]
		opts.Cluster = server.ClusterOpts{Name: "noticerelay-test", Host: "127.0.0.1", Port: ports[2*i+1]}
		opts.Routes = server.RoutesFromStr(strings.Join(append(append([]string{}, routes[:i]...), routes[i+1:]...), ","))
		c.opt[i] = opts
	}
	// Every node starts before any is waited for: JetStream waits for its
	// peers.
	errs := make([]error, o.Size)
	var wg sync.WaitGroup
	for i := range o.Size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.WaitReady(60 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func nodeName(i int) string { return fmt.Sprintf("n%d", i+1) }

// freePorts finds n distinct free ports on 127.0.0.1. They are closed
// again before the nodes bind them; the nodes keep them across restarts.
func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func (c *Cluster) start(i int) error {
	opts := c.opt[i].Clone()
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("creating NATS node %s: %w", nodeName(i), err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(60 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("NATS node %s not ready after 60s", nodeName(i))
	}
	c.mu.Lock()
	c.nodes[i] = &Server{ns}
	c.mu.Unlock()
	return nil
}

// WaitReady waits until every running node has routes to the other running
// nodes and knows the JetStream meta leader.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS cluster not ready after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) ready() error {
	running := c.Running()
	leader := ""
	for _, s := range running {
		if s.NumRoutes() < len(running)-1 {
			return fmt.Errorf("%s has %d routes", s.Name(), s.NumRoutes())
		}
		info, err := s.Jsz(nil)
		if err != nil {
			return err
		}
		if info.Meta == nil || info.Meta.Leader == "" {
			return fmt.Errorf("%s knows no JetStream meta leader", s.Name())
		}
		if leader != "" && info.Meta.Leader != leader {
			return fmt.Errorf("%s and another node know different meta leaders", s.Name())
		}
		leader = info.Meta.Leader
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("%s: JetStream is not current", s.Name())
		}
		if info.Meta.Leader == s.Name() {
			// The meta leader places streams: it must see every running
			// node online, or a stream created now finds "no suitable
			// peers".
			seen := map[string]bool{}
			for _, p := range info.Meta.Replicas {
				seen[p.Name] = p.Current && !p.Offline
			}
			for _, o := range running {
				if o != s && !seen[o.Name()] {
					return fmt.Errorf("meta leader %s does not yet see %s online and current", s.Name(), o.Name())
				}
			}
		}
	}
	return nil
}

// Running returns the nodes that are running.
func (c *Cluster) Running() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Server
	for _, s := range c.nodes {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Node returns node i (from 0), or nil while it is stopped.
func (c *Cluster) Node(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// NodeNamed returns the running node with the server name (n1, n2, ...).
func (c *Cluster) NodeNamed(name string) (int, *Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.nodes {
		if s != nil && s.Name() == name {
			return i, s
		}
	}
	return -1, nil
}

// URL is the comma-separated client URLs of every node, for nats.Connect
// and the relay's nats.url.
func (c *Cluster) URL() string {
	var urls []string
	for _, o := range c.opt {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// NodeURL is node i's client URL.
func (c *Cluster) NodeURL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opt[i].Port) }

// Connect connects to the cluster (any node, reconnecting to the others).
func (c *Cluster) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.URL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the NATS cluster: %w", err)
	}
	return nc, nil
}

// StopNode shuts node i down and waits for it.
func (c *Cluster) StopNode(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Stop()
	}
}

// RestartNode stops node i (if running) and starts it again on the same
// ports and store.
func (c *Cluster) RestartNode(i int) error {
	c.StopNode(i)
	return c.start(i)
}

// Stop shuts every node down.
func (c *Cluster) Stop() {
	for i := range c.nodes {
		c.StopNode(i)
	}
}
