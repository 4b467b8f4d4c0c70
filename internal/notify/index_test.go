package notify

import (
	"context"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/jobs"
)

// TestIndexes: the console's per-tenant lists of batches and failures
// hold the tenant's own, newest first, and forget batches that are gone.
func TestIndexes(t *testing.T) {
	ctx := context.Background()
	rdb := startRedis(t)
	store := jobs.NewStore(rdb, time.Hour)
	now := time.Now()
	var ids []string
	for i := range 3 {
		id := "b_" + jobs.NewID()
		ids = append(ids, id)
		rdb.HSet(ctx, jobs.BatchKey(id), FieldTenant, "acme", FieldModel, "echo", FieldTier, "premium", FieldJobs, 1,
			FieldCreatedAt, MS(now.Add(time.Duration(i)*time.Second)))
		if err := IndexBatch(ctx, rdb, "acme", id, now.Add(time.Duration(i)*time.Second), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	rdb.Del(ctx, jobs.BatchKey(ids[0])) // expired
	if err := IndexBatch(ctx, rdb, "globex", "b_"+jobs.NewID(), now, time.Hour); err != nil {
		t.Fatal(err)
	}
	bs, err := RecentBatches(ctx, rdb, "acme", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].ID != ids[2] || bs[1].ID != ids[1] {
		t.Fatalf("acme's batches: %+v", bs)
	}
	if n := rdb.ZCard(ctx, BatchIndexKey("acme")).Val(); n != 2 {
		t.Fatalf("the gone batch stays indexed: %d entries", n)
	}

	// A failed job's end, told, lands in its tenant's failures.
	j := &jobs.Job{ID: jobs.NewID(), Tenant: "acme", Model: "echo", Tier: "premium", CreatedAt: now, Deadline: now.Add(time.Minute), InputKey: "k"}
	if err := store.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := store.Finish(ctx, j, jobs.Failed, jobs.Update{Error: &jobs.Error{Code: "invalid_image", Message: "no"}}); err != nil {
		t.Fatal(err)
	}
	n := New(Config{Redis: rdb, Store: store})
	n.OnFinish(ctx, []jobs.Ended{{Message: jobs.MessageFor(j), State: jobs.Failed}})
	got, err := RecentFailures(ctx, rdb, "acme", 10)
	if err != nil || len(got) != 1 || got[0] != j.ID {
		t.Fatalf("acme's failures: %v %v", got, err)
	}
	if got, _ := RecentFailures(ctx, rdb, "globex", 10); len(got) != 0 {
		t.Fatalf("globex sees failures: %v", got)
	}
}
