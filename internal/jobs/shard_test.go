package jobs

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/fleettest"
)

func TestSlotMatchesRedisSpec(t *testing.T) {
	// The Redis Cluster spec's reference: CRC16 of "123456789" is 0x31C3.
	if got := Slot("123456789"); got != 0x31C3&16383 {
		t.Fatalf("slot of 123456789 = %d, want %d", got, 0x31C3&16383)
	}
	if got := Slot("foo"); got != 12182 { // CLUSTER KEYSLOT foo
		t.Fatalf("slot of foo = %d, want 12182", got)
	}
}

func TestShardsSpreadAndIDsKeepTheirShard(t *testing.T) {
	seen := map[int]bool{}
	for s := 0; s < Shards; s++ {
		sl := Slot(tags[s][1 : len(tags[s])-1])
		if sl < s*slotCount/Shards || sl >= (s+1)*slotCount/Shards {
			t.Fatalf("shard %d tag %s has slot %d outside its range", s, tags[s], sl)
		}
		seen[sl] = true
		for i := 0; i < 20; i++ {
			id := NewIDIn(s)
			if ShardOf(id) != s || ShardOf("b_"+id) != s {
				t.Fatalf("NewIDIn(%d) = %s has shard %d", s, id, ShardOf(id))
			}
		}
	}
	for _, hostile := range []string{"", "\xff", "{", "UPPER"} {
		if s := ShardOf(hostile); s < 0 || s >= Shards {
			t.Fatalf("ShardOf(%q) = %d", hostile, s)
		}
	}
}

// BenchmarkUnfinished: the queue quota's read of the 16 shards' counts
// (one MGET on a single node), side by side with the single GET it
// replaced.
func BenchmarkUnfinished(b *testing.B) {
	srv, err := fleettest.StartRedis(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(0)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := NewStore(rdb, 0)
	ctx := context.Background()
	b.Run("one-key", func(b *testing.B) {
		for range b.N {
			rdb.Get(ctx, "tenant:acme:unfinished")
		}
	})
	b.Run("shards", func(b *testing.B) {
		for range b.N {
			if _, err := s.Unfinished(ctx, "acme"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
