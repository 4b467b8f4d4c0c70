package fleettest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedisNode starts one redis-server named name on a free port with
// its data in dir/name and extra arguments, and waits until it answers.
func startRedisNode(dir, name string, extra ...string) (*Server, error) {
	return startRedisArgs(dir, name, func(port, rd string) []string {
		return append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", rd}, extra...)
	})
}

// startRedisArgs starts redis-server with the arguments args makes from a
// free port and the data directory dir/name.
func startRedisArgs(dir, name string, args func(port, rd string) []string) (*Server, error) {
	bin, err := Binary("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w (or: apt-get install redis-server)", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	rd := filepath.Join(dir, name)
	if err := os.MkdirAll(rd, 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := StartProc(name, bin, args(strconv.Itoa(port), rd), nil, filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	if err := waitFor(20*time.Second, p, func() bool { return dialable(addr) }); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Server{Proc: p, Addr: addr, Dir: rd}, nil
}

// SentinelSet is a Redis primary with one replica, watched by three
// Sentinels (quorum two) that fail over within a couple of seconds.
type SentinelSet struct {
	Master    string
	Primary   *Server
	Replica   *Server
	Sentinels []*Server
}

// StartSentinelSet starts a primary, its replica and three Sentinels in
// dir, and waits until the Sentinels know the replica and each other.
func StartSentinelSet(dir string) (_ *SentinelSet, err error) {
	s := &SentinelSet{Master: "inferq"}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.Primary, err = startRedisNode(dir, "redis-primary"); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(s.Primary.Addr, ":")
	if s.Replica, err = startRedisNode(dir, "redis-replica", "--replicaof", host, port); err != nil {
		return nil, err
	}
	for i := range 3 {
		name := fmt.Sprintf("redis-sentinel%d", i)
		sn, err := startRedisArgs(dir, name, func(sport, sd string) []string {
			// Sentinel rewrites its config file as it learns, so each has
			// its own, written fresh; the file comes first on the line.
			conf := filepath.Join(sd, "sentinel.conf")
			body := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 2\nsentinel down-after-milliseconds %[1]s 1000\nsentinel failover-timeout %[1]s 5000\nsentinel parallel-syncs %[1]s 1\n", s.Master, host, port)
			_ = os.WriteFile(conf, []byte(body), 0o644)
			return []string{conf, "--sentinel", "--port", sport, "--bind", "127.0.0.1", "--dir", sd}
		})
		if err != nil {
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, sn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc := redis.NewClient(&redis.Options{Addr: s.Primary.Addr})
	err = waitFor(30*time.Second, s.Primary.Proc, func() bool {
		info, err := pc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "state=online")
	})
	pc.Close()
	if err != nil {
		return nil, fmt.Errorf("replica did not come online: %w", err)
	}
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
		err := waitFor(30*time.Second, sn.Proc, func() bool {
			reps, err1 := sc.Replicas(ctx, s.Master).Result()
			sens, err2 := sc.Sentinels(ctx, s.Master).Result()
			return err1 == nil && err2 == nil && len(reps) == 1 && len(sens) == 2
		})
		sc.Close()
		if err != nil {
			return nil, fmt.Errorf("sentinels did not find the replica and each other: %w", err)
		}
	}
	return s, nil
}

// URL is the set's INFERQ_REDIS_URL.
func (s *SentinelSet) URL() string {
	addrs := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		addrs[i] = sn.Addr
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "/" + s.Master + "/0"
}

// Stop ends every process of the set.
func (s *SentinelSet) Stop() {
	for _, sv := range append([]*Server{s.Primary, s.Replica}, s.Sentinels...) {
		if sv != nil {
			sv.Stop(5 * time.Second)
		}
	}
}

// RedisCluster is a three-primary Redis Cluster, one replica each, with a
// short node timeout so that a replica takes over a killed primary within
// a few seconds.
type RedisCluster struct {
	Nodes []*Server
}

// StartRedisCluster starts six cluster-enabled nodes in dir, joins them
// with redis-cli --cluster create (three primaries, one replica each) and
// waits until every node reports the cluster ok.
func StartRedisCluster(dir string) (_ *RedisCluster, err error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found (apt-get install redis-tools, or redis-server which brings it): %w", err)
	}
	c := &RedisCluster{}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for i := range 6 {
		// validity-factor 0: a replica may always take over, however long
		// it was cut off; the tests kill primaries on purpose.
		n, err := startRedisNode(dir, fmt.Sprintf("redis-cluster%d", i), "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
			"--cluster-replica-validity-factor", "0")
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, tail(out, 2000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr})
		// A replica counts once it holds its primary's data: until then a
		// WAIT on its primary finds no replica.
		err := waitFor(30*time.Second, n.Proc, func() bool {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			repl, err := rdb.Info(ctx, "replication").Result()
			return err == nil && (strings.Contains(repl, "role:master") || strings.Contains(repl, "master_link_status:up"))
		})
		rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("cluster not ok at %s: %w", n.Addr, err)
		}
	}
	return c, nil
}

// URL is the cluster's INFERQ_REDIS_URL in go-redis's cluster form.
func (c *RedisCluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr + "?"
	for i, n := range c.Nodes[1:] {
		if i > 0 {
			u += "&"
		}
		u += "addr=" + n.Addr
	}
	return u
}

// Primaries returns the nodes that are primaries now.
func (c *RedisCluster) Primaries(ctx context.Context) ([]*Server, error) {
	var ps []*Server
	for _, n := range c.Nodes {
		if n.Exited() {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr})
		role, err := rdb.Do(ctx, "ROLE").Slice()
		rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("role of %s: %w", n.Addr, err)
		}
		if len(role) > 0 && role[0] == "master" {
			ps = append(ps, n)
		}
	}
	return ps, nil
}

// Stop ends every node.
func (c *RedisCluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop(5 * time.Second)
	}
}

// RestartRedis starts a stopped or killed redis-server of a rig again, on
// its port and directory with the arguments it had: a Cluster node finds
// its place from its nodes.conf, a Sentinel set's old primary is turned
// into a replica by the Sentinels. Its data is gone (the rigs keep none
// on disk), as after a host's loss.
func RestartRedis(s *Server) error {
	p, err := StartProc(s.Name, s.Cmd.Path, s.Cmd.Args[1:], nil, s.Log)
	if err != nil {
		return err
	}
	if err := waitFor(20*time.Second, p, func() bool { return dialable(s.Addr) }); err != nil {
		p.Kill()
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	s.Proc = p
	return nil
}
