package fleettest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster is a NATS cluster of nodes on loopback free ports, each with
// JetStream and its own store, joined by cluster routes. Tests kill
// (SIGKILL), stop and restart single nodes; a node keeps its ports and
// store across restarts.
type NATSCluster struct {
	Nodes []*NATSNode
}

// NATSNode is one server of a NATSCluster.
type NATSNode struct {
	// Name is the node's server_name, which JetStream reports as a stream's
	// cluster leader.
	Name string
	// Addr is the client address (host:port).
	Addr string
	// Proc is the running server (nil after Kill or Stop).
	Proc *Proc
	conf string
	log  string
}

// StartNATSCluster starts n nodes (3 for a quorum that survives one loss)
// under dir and waits until JetStream has a meta leader.
func StartNATSCluster(dir string, n int) (*NATSCluster, error) {
	bin, err := Binary("nats-server")
	if err != nil {
		return nil, err
	}
	c := &NATSCluster{}
	routes := make([]string, n)
	cports := make([]int, n)
	for i := range n {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		if cports[i], err = FreePort(); err != nil {
			return nil, err
		}
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", cports[i])
		name := fmt.Sprintf("n%d", i+1)
		c.Nodes = append(c.Nodes, &NATSNode{
			Name: name, Addr: "127.0.0.1:" + strconv.Itoa(port),
			conf: filepath.Join(dir, "nats-"+name+".conf"), log: filepath.Join(dir, "nats-"+name+".log"),
		})
	}
	for i, nd := range c.Nodes {
		sd := filepath.Join(dir, "nats-"+nd.Name)
		if err := os.MkdirAll(sd, 0o755); err != nil {
			return nil, err
		}
		// Every node lists every route, itself included (nats-server
		// ignores a route to itself), so that any node restarts alone.
		conf := fmt.Sprintf("server_name: %s\nlisten: %s\njetstream { store_dir: %q }\ncluster {\n  name: inferq\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n",
			nd.Name, nd.Addr, sd, cports[i], strings.Join(routes, ", "))
		if err := os.WriteFile(nd.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	for _, nd := range c.Nodes {
		if err := nd.start(bin); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitReady(60 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (nd *NATSNode) start(bin string) error {
	p, err := StartProc("nats-"+nd.Name, bin, []string{"-c", nd.conf}, nil, nd.log)
	if err != nil {
		return err
	}
	if err := waitFor(20*time.Second, p, func() bool { return dialable(nd.Addr) }); err != nil {
		p.Kill()
		return fmt.Errorf("nats-server %s: %w", nd.Name, err)
	}
	nd.Proc = p
	return nil
}

// URL is every node's client URL, comma-separated, as INFERQ_NATS_URL
// takes it.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		urls[i] = "nats://" + nd.Addr
	}
	return strings.Join(urls, ",")
}

// WaitReady waits until JetStream answers through the cluster (a meta
// leader is elected and the account is served).
func (c *NATSCluster) WaitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if last = c.jsReady(); last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("nats cluster: JetStream not ready: %w", last)
}

func (c *NATSCluster) jsReady() error {
	nc, err := nats.Connect(c.URL(), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// Node returns the node called name (a stream's cluster leader), or nil.
func (c *NATSCluster) Node(name string) *NATSNode {
	for _, nd := range c.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	return nil
}

// StreamLeader is the node that leads stream now.
func (c *NATSCluster) StreamLeader(ctx context.Context, stream string) (*NATSNode, error) {
	nc, err := nats.Connect(c.URL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader now", stream)
	}
	if nd := c.Node(info.Cluster.Leader); nd != nil {
		return nd, nil
	}
	return nil, fmt.Errorf("stream %s: leader %q is no node of the cluster", stream, info.Cluster.Leader)
}

// Kill ends the node at once (SIGKILL), as a crash would.
func (nd *NATSNode) Kill() {
	if nd.Proc != nil {
		nd.Proc.Kill()
		nd.Proc = nil
	}
}

// Stop ends the node gracefully.
func (nd *NATSNode) Stop() {
	if nd.Proc != nil {
		nd.Proc.Stop(5 * time.Second)
		nd.Proc = nil
	}
}

// Restart starts a stopped or killed node again on its ports and store.
func (nd *NATSNode) Restart() error {
	if nd.Proc != nil {
		return fmt.Errorf("nats-server %s is running", nd.Name)
	}
	bin, err := Binary("nats-server")
	if err != nil {
		return err
	}
	return nd.start(bin)
}

// Stop ends every node.
func (c *NATSCluster) Stop() {
	for _, nd := range c.Nodes {
		nd.Stop()
	}
}
