package scheduler

import (
	"testing"
	"time"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/sla"
)

func TestDesiredWorkers(t *testing.T) {
	tiers := sla.DefaultTiers()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	p, _ := sla.New(tiers)
	q := &modelQueue{policy: p}
	one := coord.ModelCapacity{Slots: 16, Rate: 10, Workers: 1}
	if n := q.desiredWorkers(now, one, tiers); n != 0 {
		t.Fatalf("idle queue wants %d workers, want 0 (scale to zero)", n)
	}
	// 600 bulk jobs (1 h deadline) at 10 jobs/s per worker: one worker.
	for i := 0; i < 600; i++ {
		q.push(jobs.Message{ID: "b" + string(rune(i)), Tier: "bulk", CreatedAt: now, Deadline: now.Add(time.Hour)}, now)
	}
	bulkOnly := q.desiredWorkers(now, one, tiers)
	if bulkOnly < 1 || bulkOnly > 3 {
		t.Fatalf("600 bulk jobs ask for %d workers, want 1-3", bulkOnly)
	}
	// The same backlog with premium jobs (5 s) waiting asks for far more.
	for i := 0; i < 200; i++ {
		q.push(jobs.Message{ID: "p" + string(rune(i)), Tier: "premium", CreatedAt: now, Deadline: now.Add(5 * time.Second)}, now)
	}
	// 800 jobs to clear within the premium 5 s at 10 jobs/s a worker: 16
	// workers at least, besides the arrivals.
	if n := q.desiredWorkers(now, one, tiers); n < 16 || n <= bulkOnly {
		t.Fatalf("premium backlog asks for %d workers, want at least 16", n)
	}
	// Nothing measured yet: ask for one worker at least.
	if n := q.desiredWorkers(now, coord.ModelCapacity{}, tiers); n != 1 {
		t.Fatalf("unmeasured fleet: %d, want 1", n)
	}
}

func TestExpectedWaitPlainPolicies(t *testing.T) {
	now := time.Now()
	q := &modelQueue{policy: sla.NewFIFO()}
	for i := 0; i < 100; i++ {
		q.push(jobs.Message{ID: string(rune('a' + i)), Tier: "bulk", CreatedAt: now, Deadline: now.Add(time.Hour)}, now)
	}
	got := q.expectedWait("bulk", now, coord.ModelCapacity{Rate: 50, Latency: time.Second})
	if got != 3*time.Second {
		t.Fatalf("100 queued at 50/s plus 1s latency: %s, want 3s", got)
	}
	if q.expectedWait("bulk", now, coord.ModelCapacity{}) != 0 {
		t.Fatal("no capacity known: no estimate")
	}
}
