package jobs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/fleettest"
)

func startRedis(t *testing.T) *redis.Client { return fleettest.Redis(t) }

func TestStoreLifecycle(t *testing.T) {
	rdb := startRedis(t)
	s := NewStore(rdb, time.Hour)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := &Job{ID: NewID(), Tenant: "acme", Tier: "premium", Model: "echo", CreatedAt: now, Deadline: now.Add(5 * time.Second), InputKey: "k"}
	if err := s.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Unfinished(ctx, "acme"); n != 1 {
		t.Fatalf("unfinished = %d, want 1", n)
	}
	if _, err := s.Transition(ctx, j.ID, j.Tenant, Running, Update{}); !errors.Is(err, ErrIllegal) {
		t.Fatalf("queued -> running: %v, want ErrIllegal", err)
	}
	if _, err := s.Transition(ctx, j.ID, j.Tenant, Scheduled, Update{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // a redelivery runs it again
		if _, err := s.Transition(ctx, j.ID, j.Tenant, Running, Update{StartedAt: now, ModelVersion: "3", CountAttempt: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx, j, Succeeded, Update{FinishedAt: now.Add(time.Second), Result: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	var te *TransitionError
	if err := s.Finish(ctx, j, Failed, Update{}); !errors.As(err, &te) || te.From != Succeeded {
		t.Fatalf("second finish: %v, want a refusal from succeeded", err)
	}
	got, err := s.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != Succeeded || got.Attempts != 2 || got.ModelVersion != "3" || string(got.Result) != `{"ok":true}` ||
		got.MetDeadline == nil || !*got.MetDeadline || !got.StartedAt.Equal(now) || got.Tenant != "acme" {
		t.Fatalf("record: %+v", got)
	}
	if n, _ := s.Unfinished(ctx, "acme"); n != 0 {
		t.Fatalf("unfinished after finish = %d, want 0", n)
	}
	if ttl := rdb.TTL(ctx, RecordKey(j.ID)).Val(); ttl <= ExpiredGrace || ttl > time.Hour+ExpiredGrace {
		t.Fatalf("finished record TTL %s, want the retention and the grace", ttl)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	late := &Job{ID: NewID(), Tenant: "acme", CreatedAt: now, Deadline: now.Add(time.Second)}
	_ = s.Create(ctx, late)
	if err := s.Finish(ctx, late, Failed, Update{FinishedAt: now.Add(2 * time.Second), Error: &Error{Code: "x", Message: "y"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, late.ID); *got.MetDeadline || got.Error.Code != "x" {
		t.Fatalf("late failed job: %+v", got)
	}
}

// TestFinishOnce: many finishers racing for one job; exactly one wins.
func TestFinishOnce(t *testing.T) {
	rdb := startRedis(t)
	s := NewStore(rdb, time.Hour)
	ctx := context.Background()
	j := &Job{ID: NewID(), Tenant: "t", CreatedAt: time.Now(), Deadline: time.Now().Add(time.Minute)}
	_ = s.Create(ctx, j)
	_, _ = s.Transition(ctx, j.ID, j.Tenant, Scheduled, Update{})
	_, _ = s.Transition(ctx, j.ID, j.Tenant, Running, Update{})
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := Succeeded
			if i%3 == 0 {
				to = Canceled
			}
			if err := s.Finish(ctx, j, to, Update{}); err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d finishers won, want 1", wins.Load())
	}
	if n, _ := s.Unfinished(ctx, "t"); n != 0 {
		t.Fatalf("unfinished = %d, want 0", n)
	}
}

func TestBatchCounts(t *testing.T) {
	rdb := startRedis(t)
	s := NewStore(rdb, time.Hour)
	ctx := context.Background()
	now := time.Now()
	var js []*Job
	for i := 0; i < 3; i++ {
		j := &Job{ID: NewIDIn(ShardOf("b1")), Tenant: "t", BatchID: "b1", CreatedAt: now, Deadline: now.Add(time.Minute)}
		if err := s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		js = append(js, j)
	}
	for _, j := range js[:2] {
		_, _ = s.Transition(ctx, j.ID, j.Tenant, Scheduled, Update{})
		_, _ = s.Transition(ctx, j.ID, j.Tenant, Running, Update{})
		_, _ = s.Transition(ctx, j.ID, j.Tenant, Running, Update{}) // redelivery: no double count
	}
	_ = s.Finish(ctx, js[0], Succeeded, Update{})
	_ = s.Finish(ctx, js[0], Failed, Update{}) // refused: no count
	_, _ = s.Transition(ctx, js[2].ID, "t", Canceled, Update{})
	got := rdb.HGetAll(ctx, BatchKey("b1")).Val()
	want := map[string]string{"queued": "0", "scheduled": "0", "running": "1", "succeeded": "1", "canceled": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("batch counts %v, want %v", got, want)
		}
	}
}

func TestIndexesAndSLACounts(t *testing.T) {
	rdb := startRedis(t)
	s := NewStore(rdb, time.Hour)
	ctx := context.Background()
	now := time.Now()
	mk := func(deadline time.Duration) *Job {
		j := &Job{ID: NewID(), Tenant: "t", Model: "echo", Tier: "premium", CreatedAt: now, Deadline: now.Add(deadline)}
		if err := s.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		_, _ = s.Transition(ctx, j.ID, j.Tenant, Scheduled, Update{})
		_, _ = s.Transition(ctx, j.ID, j.Tenant, Running, Update{})
		return j
	}
	a, b := mk(time.Minute), mk(-time.Second)
	if ids, _ := s.RunningSince(ctx, now.Add(time.Minute), 10); len(ids) != 2 {
		t.Fatalf("running index: %v", ids)
	}
	_ = s.Finish(ctx, a, Succeeded, Update{Result: []byte(`1`)})
	_ = s.Finish(ctx, b, Failed, Update{})
	if ids, _ := s.RunningSince(ctx, now.Add(time.Minute), 10); len(ids) != 0 {
		t.Fatalf("running index after finish: %v", ids)
	}
	if ids, _ := s.FinishedBefore(ctx, now.Add(time.Minute), 10); len(ids) != 2 {
		t.Fatalf("finished index: %v", ids)
	}
	counts, _ := s.SLACounts(ctx)
	if len(counts) != 1 || counts[0] != (SLACount{Model: "echo", Tier: "premium", Finished: 2, Met: 1}) {
		t.Fatalf("sla counts %+v", counts)
	}
	if _, err := s.Transition(ctx, a.ID, a.Tenant, Expired, Update{ClearResult: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, a.ID)
	if got.Status != Expired || got.Result != nil {
		t.Fatalf("expired: %+v", got)
	}
	if ids, _ := s.FinishedBefore(ctx, now.Add(time.Minute), 10); len(ids) != 1 {
		t.Fatalf("finished index after expiry: %v", ids)
	}
	if ttl := rdb.TTL(ctx, RecordKey(a.ID)).Val(); ttl > ExpiredGrace || ttl <= 0 {
		t.Fatalf("expired record ttl %s", ttl)
	}
}

// TestWithdrawIsExact: undoing a refused batch whose messages were partly
// stored leaves every count as if the batch had never been: a job still
// queued loses its record and counts, a job a scheduler already took is
// canceled (its end told to nobody), a job that already ended stays
// ended; and undoing twice changes nothing more.
func TestWithdrawIsExact(t *testing.T) {
	rdb := startRedis(t)
	s := NewStore(rdb, time.Hour)
	ctx := context.Background()
	now := time.Now()
	var js []*Job
	for range 3 {
		js = append(js, &Job{ID: NewIDIn(ShardOf("b1")), Tenant: "acme", Tier: "bulk", Model: "echo", CreatedAt: now,
			Deadline: now.Add(time.Hour), Input: []byte("x"), BatchID: "b1"})
	}
	if err := s.CreateMany(ctx, js); err != nil {
		t.Fatal(err)
	}
	queued, taken, ended := js[0], js[1], js[2]
	if _, err := s.Transition(ctx, taken.ID, taken.Tenant, Scheduled, Update{}); err != nil {
		t.Fatal(err)
	}
	for _, to := range []State{Scheduled, Running} {
		if _, err := s.Transition(ctx, ended.ID, ended.Tenant, to, Update{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx, ended, Succeeded, Update{Result: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Withdraw(ctx, js); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Unfinished(ctx, "acme"); n != 0 {
			t.Fatalf("unfinished = %d after withdrawing, want 0", n)
		}
		counts, _ := rdb.HGetAll(ctx, BatchKey("b1")).Result()
		if counts["queued"] != "0" || counts["scheduled"] != "0" || counts["canceled"] != "1" || counts["succeeded"] != "1" {
			t.Fatalf("batch counts after withdrawing: %v", counts)
		}
		if _, err := s.Get(ctx, queued.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the queued job's record: %v, want it gone", err)
		}
		if j, _ := s.Get(ctx, taken.ID); j == nil || j.Status != Canceled {
			t.Fatalf("the taken job: %+v, want canceled", j)
		}
		if j, _ := s.Get(ctx, ended.ID); j == nil || j.Status != Succeeded {
			t.Fatalf("the ended job: %+v, want it left succeeded", j)
		}
		// The canceled job's end tells nobody; the ended one's is its
		// finisher's to tell.
		if untold, _ := s.EndedBefore(ctx, time.Now().Add(time.Minute), 10); len(untold) != 1 || untold[0] != ended.ID {
			t.Fatalf("outbox after withdrawing: %v, want only the job that ended on its own", untold)
		}
	}
}
