package fleettest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// Redis starts a redis-server of the test's own and returns a client on
// it; both end with the test. In -short mode the test is skipped, by name.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server: skipped in -short mode")
	}
	srv, err := StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(5 * time.Second) })
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// NATS starts a nats-server (JetStream on) of the test's own and returns a
// connection to it; both end with the test. In -short mode the test is
// skipped, by name.
func NATS(t testing.TB) *nats.Conn {
	t.Helper()
	if testing.Short() {
		t.Skip("starts nats-server: skipped in -short mode")
	}
	srv, err := StartNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(5 * time.Second) })
	nc, err := nats.Connect("nats://" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Sentinel starts a SentinelSet of the test's own (a primary, a replica,
// three Sentinels) that ends with the test. In -short mode the test is
// skipped, by name.
func Sentinel(t testing.TB) *SentinelSet {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server and sentinels: skipped in -short mode")
	}
	set, err := StartSentinelSet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Stop)
	return set
}

// Cluster starts a RedisCluster of the test's own (three primaries, a
// replica each) that ends with the test. In -short mode the test is
// skipped, by name.
func Cluster(t testing.TB) *RedisCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a six-node redis cluster: skipped in -short mode")
	}
	c, err := StartRedisCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}
