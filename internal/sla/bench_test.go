package sla

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkDeadlinePushPop is one Push and one Pop on a queue holding
// 100,000 jobs of three tiers.
func BenchmarkDeadlinePushPop(b *testing.B) {
	d, err := New(DefaultTiers())
	if err != nil {
		b.Fatal(err)
	}
	d.SetCapacity(20, time.Second)
	tiers := []string{"premium", "standard", "bulk", "bulk", "bulk"}
	ids := make([]string, 100_000+b.N)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	for i := range 100_000 {
		d.Push(Job{ID: ids[i], Tier: tiers[i%len(tiers)], Arrival: at(0)}, at(0))
	}
	b.ResetTimer()
	for i := range b.N {
		now := at(float64(i) / 1000)
		d.Push(Job{ID: ids[100_000+i], Tier: tiers[i%len(tiers)], Arrival: now}, now)
		if _, ok := d.Pop(now); !ok {
			b.Fatal("empty")
		}
	}
}
