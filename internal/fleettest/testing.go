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
