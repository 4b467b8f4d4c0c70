package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/redisurl"
)

// Every path of the store runs on a three-primary Redis Cluster without a
// CROSSSLOT (or MOVED) error: creates of single jobs and of a batch (with
// a replica required, so WAIT runs on each shard's primary), transitions
// to every end and to expired, withdraw, a document's pages and progress,
// and the readers that walk or sum the shards.
func TestStoreOnCluster(t *testing.T) {
	c := fleettest.Cluster(t)
	rdb, _, err := redisurl.Open(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	// The CRC16 here matches the Cluster's own.
	for _, k := range []string{"123456789", "job", tags[3][1 : len(tags[3])-1]} {
		if got := rdb.ClusterKeySlot(ctx, k).Val(); int(got) != Slot(k) {
			t.Fatalf("CLUSTER KEYSLOT %s = %d, Slot = %d", k, got, Slot(k))
		}
	}

	s := NewStore(rdb, time.Hour)
	s.RequireReplicas(1)
	now := time.Now()
	mk := func(id, batch string) *Job {
		return &Job{ID: id, Tenant: "acme", Tier: "bulk", Model: "echo", CreatedAt: now,
			Deadline: now.Add(time.Hour), InputKey: "k", BatchID: batch}
	}
	var singles []*Job
	for range 40 { // ids fall in every shard
		singles = append(singles, mk(NewID(), ""))
	}
	batch := "b_" + NewID()
	var members []*Job
	for range 5 {
		members = append(members, mk(NewIDIn(ShardOf(batch)), batch))
	}
	if err := s.CreateMany(ctx, singles); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMany(ctx, members); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMany(ctx, []*Job{mk(NewIDIn((ShardOf(batch)+1)%Shards), batch)}); err == nil {
		t.Fatal("a batch job outside its batch's shard was stored")
	}
	if n, err := s.Unfinished(ctx, "acme"); err != nil || n != 45 {
		t.Fatalf("unfinished = %d, %v; want 45", n, err)
	}

	all := append(append([]*Job{}, singles...), members...)
	step := func(to State, js []*Job, u Update) {
		t.Helper()
		moves := make([]Move, len(js))
		for i, j := range js {
			moves[i] = Move{ID: j.ID, Tenant: j.Tenant, To: to, Update: u}
		}
		for i, r := range s.TransitionMany(ctx, moves) {
			if r.Err != nil {
				t.Fatalf("move %s to %s: %v", js[i].ID, to, r.Err)
			}
		}
	}
	// Two queued jobs leave by withdraw; the rest run.
	if err := s.Withdraw(ctx, []*Job{singles[0], members[0]}); err != nil {
		t.Fatal(err)
	}
	all = append(append([]*Job{}, singles[1:]...), members[1:]...)
	step(Scheduled, all, Update{})
	step(Running, all, Update{StartedAt: now, CountAttempt: true})
	if _, err := s.DocumentProgress(ctx, []string{all[0].ID}); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.RunningSince(ctx, time.Now().Add(time.Minute), 100); err != nil || len(ids) != len(all) {
		t.Fatalf("running: %d, %v; want %d", len(ids), err, len(all))
	}
	if err := s.TouchRunning(ctx, all[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	var ends []Move
	for i, j := range all {
		to := []State{Succeeded, Failed, Canceled}[i%3]
		ends = append(ends, Finishing(j, to, Update{Result: []byte(`{}`)}))
	}
	for i, r := range s.TransitionMany(ctx, ends) {
		if r.Err != nil {
			t.Fatalf("end %s: %v", ends[i].ID, r.Err)
		}
	}
	if n, err := s.Unfinished(ctx, "acme"); err != nil || n != 0 {
		t.Fatalf("unfinished after the ends = %d, %v", n, err)
	}
	counts := rdb.HGetAll(ctx, BatchKey(batch)).Val()
	if counts["queued"] != "0" || counts["scheduled"] != "0" || counts["running"] != "0" {
		t.Fatalf("batch counts %v", counts)
	}
	sla, err := s.SLACounts(ctx)
	if err != nil || len(sla) != 1 || sla[0].Finished != int64(len(all)) || sla[0].Met != int64(len(all)) {
		t.Fatalf("SLA counts %+v, %v", sla, err)
	}
	ended, err := s.EndedBefore(ctx, time.Now().Add(time.Minute), 1000)
	if err != nil || len(ended) != len(all) {
		t.Fatalf("ended: %d, %v", len(ended), err)
	}
	if err := s.Told(ctx, ended...); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.EndedBefore(ctx, time.Now().Add(time.Minute), 1000); len(left) != 0 {
		t.Fatalf("%d still untold", len(left))
	}
	done, err := s.FinishedBefore(ctx, time.Now().Add(time.Minute), 10)
	if err != nil || len(done) != 10 {
		t.Fatalf("finished page: %d, %v", len(done), err)
	}
	if n, err := s.FinishedDue(ctx, time.Now().Add(time.Minute)); err != nil || n != int64(len(all)) {
		t.Fatalf("finished due = %d, %v", n, err)
	}
	step(Expired, all, Update{ClearResult: true})
	if err := s.Forget(ctx, all[0].ID, all[1].ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.FinishedDue(ctx, time.Now().Add(time.Minute)); n != 0 {
		t.Fatalf("%d expired jobs left in the finished index", n)
	}
	got, err := s.GetMany(ctx, []string{all[0].ID, members[0].ID, members[1].ID})
	if err != nil || got[0].Status != Expired || got[1] != nil || got[2].Status != Expired {
		t.Fatalf("records after expiry: %+v, %v", got, err)
	}
	checkPages(t, s)
}
