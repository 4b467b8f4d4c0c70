package notify

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/webhook"
)

// TestOutboxTellsLostEnds: a job whose final transition happened but
// whose finisher never told it (it crashed, or lost the reply and took the
// job for finished by another) still sends its webhook and completes its
// batch, through the outbox; an end that was told is not told again.
func TestOutboxTellsLostEnds(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	store := jobs.NewStore(rdb, time.Hour)
	n := New(Config{Redis: rdb, Store: store})
	now := time.Now()
	if err := rdb.HSet(ctx, jobs.BatchKey("b1"), FieldTenant, "acme", FieldModel, "echo", FieldTier, "bulk",
		FieldCreatedAt, MS(now)).Err(); err != nil {
		t.Fatal(err)
	}
	mk := func(webhookURL, batch string) *jobs.Job {
		j := &jobs.Job{ID: jobs.NewIDIn(jobs.ShardOf(batch)), Tenant: "acme", Tier: "bulk", Model: "echo", CreatedAt: now,
			Deadline: now.Add(time.Hour), InputKey: "inputs/acme/x", BatchID: batch, WebhookURL: webhookURL}
		if err := store.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		if batch != "" {
			rdb.RPush(ctx, JobsKey(batch), j.ID)
		}
		for _, to := range []jobs.State{jobs.Scheduled, jobs.Running} {
			if _, err := store.Transition(ctx, j.ID, j.Tenant, to, jobs.Update{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.Finish(ctx, j, jobs.Succeeded, jobs.Update{Result: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		return j
	}
	told := mk("https://example.com/told", "")
	lost := mk("https://example.com/lost", "b1") // the batch's last (only) job
	rdb.HSet(ctx, jobs.BatchKey("b1"), FieldJobs, 1)
	// The first job's finisher told its end; the second's never did.
	n.OnFinish(ctx, []jobs.Ended{{Message: jobs.MessageFor(told), State: jobs.Succeeded, MetDeadline: true}})
	ins := asynq.NewInspector(asynq.RedisClientOpt{Addr: rdb.Options().Addr})
	defer ins.Close()
	pending := func() map[string]bool {
		tasks, err := ins.ListPendingTasks(webhook.QueueName)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, tk := range tasks {
			ids[tk.ID] = true
		}
		return ids
	}
	if p := pending(); !p[EventID(told.ID, webhook.EventJobSucceeded)] || p[EventID(lost.ID, webhook.EventJobSucceeded)] {
		t.Fatalf("before reconciling: webhooks pending %v", p)
	}
	if b, _ := LoadBatch(ctx, rdb, "b1"); !b.CompletedAt.IsZero() {
		t.Fatal("batch completed (batch.completed sent) with one job's end untold")
	}
	got, err := n.Reconcile(ctx, time.Now().Add(time.Second))
	if err != nil || got != 1 {
		t.Fatalf("Reconcile told %d ends (%v), want 1: the lost one", got, err)
	}
	if p := pending(); !p[EventID(lost.ID, webhook.EventJobSucceeded)] {
		t.Fatalf("after reconciling: the lost end's webhook is not pending (%v)", p)
	}
	if b, err := LoadBatch(ctx, rdb, "b1"); err != nil || b.CompletedAt.IsZero() || b.MetDeadline != 1 {
		t.Fatalf("batch after reconciling: %+v %v, want completed with its job's met deadline", b, err)
	}
	if again, err := n.Reconcile(ctx, time.Now().Add(time.Second)); err != nil || again != 0 {
		t.Fatalf("second Reconcile told %d (%v), want 0", again, err)
	}
}
