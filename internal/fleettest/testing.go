package fleettest

import (
	"testing"
	"time"

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
