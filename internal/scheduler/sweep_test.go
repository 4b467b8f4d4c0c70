package scheduler

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/queue"
)

// TestSweepEndsOrphans: a producer died between its records and their
// messages, once for a single job and once half-way through a batch's
// publish. While no scheduler runs, the sweep's probes of jobs whose
// messages are stored are dropped as duplicates and the others wait;
// once a scheduler answers them, the sweep withdraws the orphan and the
// whole unfinished batch (records, counts, inputs, batch record), and
// leaves the published single job alone.
func TestSweepEndsOrphans(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	later := func() time.Time { return time.Now().Add(2 * jobs.OrphanAfter) }
	newJob := func(batch string) *jobs.Job {
		now := time.Now()
		id := jobs.NewID()
		if batch != "" {
			id = jobs.NewIDIn(jobs.ShardOf(batch))
		}
		j := &jobs.Job{ID: id, Tenant: "t", Tier: "bulk", Model: "echo", BatchID: batch,
			CreatedAt: now, Deadline: now.Add(time.Hour), InputKey: blob.InputKey("t", id), ContentType: "text/plain", InputSize: 2}
		if _, err := r.blob.Put(ctx, j.InputKey, bytes.NewReader([]byte("in")), 2, "text/plain"); err != nil {
			t.Fatal(err)
		}
		return j
	}
	publish := func(j *jobs.Job) {
		if err := queue.Publish(ctx, r.js, queue.SubmitSubject(j.Tier), j.ID, jobs.MessageFor(j).Encode()); err != nil {
			t.Fatal(err)
		}
	}

	orphan, published := newJob(""), newJob("")
	batch := jobs.NewID()
	inBatch := []*jobs.Job{newJob(batch), newJob(batch)}
	if err := r.rdb.HSet(ctx, jobs.BatchKey(batch), notify.FieldTenant, "t").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.store.CreateMany(ctx, []*jobs.Job{orphan, published}); err != nil {
		t.Fatal(err)
	}
	if err := r.store.CreateMany(ctx, inBatch); err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.RPush(ctx, notify.JobsKey(batch), inBatch[0].ID, inBatch[1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	publish(published)
	publish(inBatch[0]) // the producer died before the second message

	if n, err := r.up.Sweep(ctx, later()); err != nil || n != 0 {
		t.Fatalf("sweep with no scheduler answering: %d withdrawn, %v; want 0", n, err)
	}
	if got, _ := r.store.Orphans(ctx, 10); len(got) != 0 {
		t.Fatalf("orphans before any probe was answered: %v", got)
	}

	nc, err := nats.Connect("nats://" + r.back.NATS.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := coord.Open(ctx, r.js, 1); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{NATS: nc, JS: r.js, Store: r.store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })

	want := []string{orphan.ID, inBatch[1].ID}
	slices.Sort(want)
	eventually(t, "the scheduler answers the probes", func() bool {
		got, err := r.store.Orphans(ctx, 10)
		slices.Sort(got)
		return err == nil && slices.Equal(got, want)
	})
	eventually(t, "the scheduler unmarks the jobs it received", func() bool {
		left, err := r.store.Unpublished(ctx, later(), 10)
		return err == nil && len(left) == 0
	})

	n, err := r.up.Sweep(ctx, later())
	if err != nil || n != 3 {
		t.Fatalf("sweep: %d withdrawn, %v; want the orphan and both jobs of the unfinished batch", n, err)
	}
	for _, j := range []*jobs.Job{orphan, inBatch[0], inBatch[1]} {
		if _, err := r.store.Get(ctx, j.ID); err == nil {
			t.Errorf("job %s still has a record", j.ID)
		}
	}
	if rec, err := r.store.Get(ctx, published.ID); err != nil || rec.Status != jobs.Queued {
		t.Errorf("published job: %v, %v; want it queued still", rec, err)
	}
	if n, _ := r.rdb.Exists(ctx, jobs.BatchKey(batch), notify.JobsKey(batch)).Result(); n != 0 {
		t.Errorf("the unfinished batch's record and job list are still there")
	}
	if n, err := r.store.Unfinished(ctx, "t"); err != nil || n != 1 {
		t.Errorf("tenant's unfinished count: %d, %v; want 1 (the published job)", n, err)
	}
	if got := r.objects(t); !slices.Equal(got, []string{published.InputKey}) {
		t.Errorf("objects left: %v; want only the published job's input", got)
	}
	if n, err := r.up.Sweep(ctx, later()); err != nil || n != 0 {
		t.Errorf("second sweep: %d withdrawn, %v; want 0", n, err)
	}
	if got, _ := r.store.Orphans(ctx, 10); len(got) != 0 {
		t.Errorf("orphans left after the sweep: %v", got)
	}
}
