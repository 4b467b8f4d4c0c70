package sla

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// mixed pushes, in this order: bulk b (deadline 1 h), premium p (5 s),
// standard s (60 s), premium q (5 s), bulk c with a deadline asked earlier
// than b's, each a second apart.
func mixed(p Policy) {
	p.Push(job("b", "bulk", 0, time.Hour), at(0))
	p.Push(job("p", "premium", 1, 5*time.Second), at(1))
	p.Push(job("s", "standard", 2, time.Minute), at(2))
	p.Push(job("q", "premium", 3, 5*time.Second), at(3))
	p.Push(job("c", "bulk", 4, 30*time.Minute), at(4))
}

func TestBaselineOrders(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		want string
	}{
		{"fifo", NewFIFO(), "[b p s q c]"},
		{"strict", NewStrictPriority(DefaultTiers()), "[p q s b c]"},
		{"edf", NewEDF(), "[p q s c b]"},
	} {
		mixed(tc.p)
		if got := fmt.Sprint(popIDs(t, tc.p, at(5), 10)); got != tc.want {
			t.Errorf("%s: pop order %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBaselineRemoveAndStats(t *testing.T) {
	for _, p := range []Policy{NewFIFO(), NewStrictPriority(DefaultTiers()), NewEDF()} {
		mixed(p)
		p.Push(job("p", "premium", 9, 5*time.Second), at(9)) // duplicate
		if p.Len() != 5 || !p.Remove("s") || p.Remove("s") || p.Len() != 4 {
			t.Fatalf("%T: Len/Remove wrong", p)
		}
		var premium TierStats
		for _, s := range p.Stats(at(10)) {
			if s.Tier == "premium" {
				premium = s
			}
		}
		if premium.Queued != 2 || premium.OldestWait != 9*time.Second {
			t.Fatalf("%T: premium stats %+v", p, premium)
		}
		if ids := popIDs(t, p, at(10), 10); slices.Contains(ids, "s") || len(ids) != 4 {
			t.Fatalf("%T: popped %v", p, ids)
		}
	}
}

// TestHeapsAgainstSort drives the indexed heap (through EDF) with random
// pushes, removes and pops and checks each pop against a linear scan.
func TestHeapsAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	edf := NewEDF()
	type ref struct {
		id       string
		deadline time.Time
		seq      int
	}
	var queued []ref
	for i := range 20000 {
		switch op := r.IntN(10); {
		case op < 5:
			id := fmt.Sprint(i)
			d := at(float64(r.IntN(1000)))
			edf.Push(Job{ID: id, Tier: "t", Arrival: at(0), Deadline: d}, at(0))
			queued = append(queued, ref{id, d, i})
		case op < 7 && len(queued) > 0:
			k := r.IntN(len(queued))
			if !edf.Remove(queued[k].id) {
				t.Fatalf("remove %s failed", queued[k].id)
			}
			queued = slices.Delete(queued, k, k+1)
		default:
			j, ok := edf.Pop(at(0))
			if len(queued) == 0 {
				if ok {
					t.Fatal("pop from an empty queue")
				}
				continue
			}
			k := 0
			for i, q := range queued {
				if q.deadline.Before(queued[k].deadline) || q.deadline.Equal(queued[k].deadline) && q.seq < queued[k].seq {
					k = i
				}
			}
			if !ok || j.ID != queued[k].id {
				t.Fatalf("pop %q, want %q", j.ID, queued[k].id)
			}
			queued = slices.Delete(queued, k, k+1)
		}
		if edf.Len() != len(queued) {
			t.Fatalf("Len %d, want %d", edf.Len(), len(queued))
		}
	}
}
