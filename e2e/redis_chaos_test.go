package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/fleettest"
)

// The fleet on Redis with replicas, under steady load (single jobs inline
// and in S3, batches, all with webhooks): the primary that holds a share
// of the jobs is SIGKILLed, a replica takes its place, and the old primary
// comes back (empty, as after a host's loss) as a replica. With
// INFERQ_REDIS_MIN_REPLICAS=1 every job answered 202 ends exactly once,
// with the right result and one webhook; 503s during the failover, and
// while the promoted primary has no replica yet, are allowed.

func TestRedisSentinelPrimaryKilled(t *testing.T) {
	f := startFleetOn(t, redisChaosOptions(), func(dir, bucket string) (*fleettest.Backing, error) {
		return fleettest.StartBackingRedisSentinel(dir, sharedS3, bucket)
	})
	set := f.back.RedisSentinel
	redisChaos(t, f, "the Sentinel set's primary", func(context.Context) (*fleettest.Server, error) { return set.Primary, nil })
}

func TestRedisClusterPrimaryKilled(t *testing.T) {
	f := startFleetOn(t, redisChaosOptions(), func(dir, bucket string) (*fleettest.Backing, error) {
		return fleettest.StartBackingRedisCluster(dir, sharedS3, bucket)
	})
	cl := f.back.RedisCluster
	redisChaos(t, f, "a Cluster primary", func(ctx context.Context) (*fleettest.Server, error) {
		ps, err := cl.Primaries(ctx)
		if err != nil || len(ps) == 0 {
			return nil, err
		}
		return ps[0], nil
	})
}

func redisChaosOptions() fleettest.Options {
	return fleettest.Options{
		Workers: 2,
		// A job whose end a worker could not make durable comes back in 5 s.
		Env: []string{"INFERQ_REDIS_MIN_REPLICAS=1", "INFERQ_ACK_WAIT=5s"},
	}
}

// redisChaos runs the load, kills the node victim names, restarts it, and
// checks the counts.
func redisChaos(t *testing.T, f *fleet, what string, victim func(context.Context) (*fleettest.Server, error)) {
	ctx := ctxT(t, 3*time.Minute)
	l := fleettest.StartLoad(t, f.Fleet, fleettest.LoadOptions{})
	time.Sleep(3 * time.Second)
	before := l.Accepted()
	node, err := victim(ctx)
	if err != nil || node == nil {
		t.Fatalf("finding %s: %v", what, err)
	}
	t.Logf("killing %s (%s) with %d jobs accepted", what, node.Addr, before)
	node.Kill()
	time.Sleep(5 * time.Second)
	during := l.Accepted()
	if err := fleettest.RestartRedis(node); err != nil {
		t.Fatal(err)
	}
	// The load runs on until the fleet takes jobs again on every shard.
	for l.Accepted() < during+20 && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	c := l.Settle(ctx)
	c.Log(t)
	t.Logf("accepted: %d before the kill, %d in the 5 s after it, %d after the restart", before, during-before, c.Accepted-during)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if before == 0 || c.Accepted == during {
		t.Fatalf("the load did not run both before the fault and after it (%d before, %d after): the test proved nothing", before, c.Accepted-during)
	}
}
