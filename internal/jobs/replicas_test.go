package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/redisurl"
)

func sentinelStore(t testing.TB) (*fleettest.SentinelSet, redis.UniversalClient) {
	t.Helper()
	set := fleettest.Sentinel(t)
	rdb, _, err := redisurl.Open(set.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return set, rdb
}

// A record that CreateMany returned for, with a replica required, outlives
// the kill -9 of the primary right after: Sentinel promotes the replica,
// which has it. Once no replica is left, CreateMany and an end refuse (the producer
// answers 503) instead of promising a job a failover could drop.
func TestRequireReplicasSurvivesFailover(t *testing.T) {
	set, rdb := sentinelStore(t)
	s := NewStore(rdb, time.Hour)
	s.RequireReplicas(1)
	ctx := context.Background()
	now := time.Now().UTC()
	var js []*Job
	for range 50 {
		js = append(js, &Job{ID: NewID(), Tenant: "acme", Tier: "premium", Model: "echo", CreatedAt: now, Deadline: now.Add(time.Minute), InputKey: "k"})
	}
	for _, j := range js {
		if err := s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	set.Primary.Kill()
	var lost int
	deadline := time.Now().Add(45 * time.Second)
	for _, j := range js {
		for {
			_, err := s.Get(ctx, j.ID)
			if err == nil {
				break
			}
			if errors.Is(err, ErrNotFound) {
				lost++
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("get %s after failover: %v", j.ID, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost in the failover", lost, len(js))
	}
	// An end waits for the replica too: none is left, so it is not
	// promised (a worker does not ack), though the primary holds it.
	if _, err := s.Transition(ctx, js[0].ID, js[0].Tenant, Scheduled, Update{}); err != nil {
		t.Fatalf("a move that is not an end waits for no replica: %v", err)
	}
	if _, err := s.Transition(ctx, js[0].ID, js[0].Tenant, Canceled, Update{FinishedAt: time.Now()}); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("end with no replica left: %v, want ErrNotReplicated", err)
	}
	j := &Job{ID: NewID(), Tenant: "acme", Tier: "premium", Model: "echo", CreatedAt: now, Deadline: now.Add(time.Minute), InputKey: "k"}
	if err := s.Create(ctx, j); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("create with no replica left: %v, want ErrNotReplicated", err)
	}
}

// BenchmarkCreateReplicas measures one job's Create on a primary with one
// replica on loopback, without and with waiting for the replica, side by
// side: the price of INFERQ_REDIS_MIN_REPLICAS=1.
func BenchmarkCreateReplicas(b *testing.B) {
	_, rdb := sentinelStore(b)
	ctx := context.Background()
	for _, n := range []int{0, 1} {
		b.Run("min_replicas="+string(rune('0'+n)), func(b *testing.B) {
			s := NewStore(rdb, time.Hour)
			s.RequireReplicas(n)
			now := time.Now().UTC()
			b.ResetTimer()
			for range b.N {
				j := &Job{ID: NewID(), Tenant: "bench", Tier: "premium", Model: "echo", CreatedAt: now, Deadline: now.Add(time.Minute), InputKey: "k"}
				if err := s.Create(ctx, j); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel/min_replicas="+string(rune('0'+n)), func(b *testing.B) {
			s := NewStore(rdb, time.Hour)
			s.RequireReplicas(n)
			now := time.Now().UTC()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					j := &Job{ID: NewID(), Tenant: "bench", Tier: "premium", Model: "echo", CreatedAt: now, Deadline: now.Add(time.Minute), InputKey: "k"}
					if err := s.Create(ctx, j); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
