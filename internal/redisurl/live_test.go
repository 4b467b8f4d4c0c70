package redisurl_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/redisurl"
)

// writeAll writes n keys, retrying each until it lands or the wait ends:
// while a failover runs, writes are refused for a moment.
func writeAll(ctx context.Context, t *testing.T, rdb redis.UniversalClient, n int, val string) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("k%d", i)
		var err error
		for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if err = rdb.Set(ctx, key, val, 0).Err(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("set %s: %v", key, err)
		}
	}
}

func readAll(ctx context.Context, t *testing.T, rdb redis.UniversalClient, n int, val string) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("k%d", i)
		got, err := rdb.Get(ctx, key).Result()
		if err != nil || got != val {
			t.Fatalf("get %s: %q, %v; want %q", key, got, err, val)
		}
	}
}

// caughtUp waits until the primary at addr has a replica whose offset
// equals its own: everything written before is on the replica.
func caughtUp(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	pc := redis.NewClient(&redis.Options{Addr: addr})
	defer pc.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		info, err := pc.Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		var own, rep int64 = -1, -2
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				own, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "slave0:"); ok {
				for _, f := range strings.Split(v, ",") {
					if o, ok := strings.CutPrefix(f, "offset="); ok {
						rep, _ = strconv.ParseInt(o, 10, 64)
					}
				}
			}
		}
		if own == rep {
			return
		}
	}
	t.Fatalf("replica of %s did not catch up", addr)
}

// The Sentinel URL reaches the primary; when it is killed, Sentinel
// promotes the replica and the same client writes on, with what was
// replicated before the kill still there.
func TestSentinelURLFailsOver(t *testing.T) {
	set := fleettest.Sentinel(t)
	rdb, shape, err := redisurl.Open(set.URL())
	if err != nil || shape != redisurl.Sentinel {
		t.Fatalf("open %s: %s, %v", set.URL(), shape, err)
	}
	defer rdb.Close()
	ctx := context.Background()
	writeAll(ctx, t, rdb, 50, "before")
	caughtUp(ctx, t, set.Primary.Addr)
	set.Primary.Kill()
	writeAll(ctx, t, rdb, 50, "after")
	readAll(ctx, t, rdb, 50, "after")
	// The client learnt the new primary from the Sentinel that led the
	// failover; the others hear of it within a few seconds (their hello
	// messages), so the first is asked until it agrees.
	sc := redis.NewSentinelClient(&redis.Options{Addr: set.Sentinels[0].Addr})
	defer sc.Close()
	var addr []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		addr, err = sc.GetMasterAddrByName(ctx, set.Master).Result()
		if err == nil && len(addr) == 2 && addr[0]+":"+addr[1] == set.Replica.Addr {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("master after failover: %v, %v; want %s", addr, err, set.Replica.Addr)
		}
	}
}

// The cluster URL reaches every primary; when one is killed its replica
// takes over its slots and the same client writes on.
func TestClusterURLFailsOver(t *testing.T) {
	t0 := time.Now()
	c := fleettest.Cluster(t)
	t.Logf("cluster up in %s", time.Since(t0).Round(time.Millisecond))
	rdb, shape, err := redisurl.Open(c.URL())
	if err != nil || shape != redisurl.Cluster {
		t.Fatalf("open %s: %s, %v", c.URL(), shape, err)
	}
	defer rdb.Close()
	ctx := context.Background()
	writeAll(ctx, t, rdb, 200, "before")
	ps, err := c.Primaries(ctx)
	if err != nil || len(ps) != 3 {
		t.Fatalf("primaries: %d, %v", len(ps), err)
	}
	// Every primary has its replica in step before one is killed.
	for _, p := range ps {
		caughtUp(ctx, t, p.Addr)
	}
	ps[0].Kill()
	t0 = time.Now()
	writeAll(ctx, t, rdb, 200, "after")
	readAll(ctx, t, rdb, 200, "after")
	t.Logf("writes resumed within %s of the kill", time.Since(t0).Round(time.Millisecond))
}
