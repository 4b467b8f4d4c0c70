package notify

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/webhook"
)

func startRedis(t *testing.T) *redis.Client { return fleettest.Redis(t) }

func TestEventID(t *testing.T) {
	a := EventID("job1", webhook.EventJobSucceeded)
	if a != EventID("job1", webhook.EventJobSucceeded) || !strings.HasPrefix(a, "msg_") || len(a) != 4+26 {
		t.Fatalf("EventID not stable or malformed: %s", a)
	}
	for _, other := range []string{EventID("job2", webhook.EventJobSucceeded), EventID("job1", webhook.EventJobFailed)} {
		if other == a {
			t.Fatal("two events share a webhook-id")
		}
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule(" 200ms, 1s ,")
	if err != nil || len(s) != 2 || s[0] != 200*time.Millisecond || s[1] != time.Second {
		t.Fatalf("ParseSchedule = %v, %v", s, err)
	}
	if s, err := ParseSchedule(""); err != nil || s != nil {
		t.Fatalf("empty schedule = %v, %v; want nil (the standard one)", s, err)
	}
	for _, bad := range []string{"soon", "-1s", strings.Repeat("1s,", webhook.MaxRetry+1)} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
	h := &handler{schedule: []time.Duration{time.Second, 2 * time.Second}}
	task := webhook.NewTask(webhook.Delivery{ID: "msg_x"})
	if d := h.retryDelay(0, errors.New("x"), task); d != time.Second {
		t.Fatalf("first retry waits %v", d)
	}
	if d := h.retryDelay(7, errors.New("x"), task); d != 2*time.Second {
		t.Fatalf("retry past the schedule waits %v, want its last step", d)
	}
	if d := h.retryDelay(0, &webhook.DeliveryError{StatusCode: 429, RetryAfter: time.Minute}, task); d != time.Minute {
		t.Fatalf("Retry-After 1m gives %v", d)
	}
	std := &handler{}
	if d := std.retryDelay(0, errors.New("x"), task); d < 4*time.Second || d > 6*time.Second {
		t.Fatalf("standard schedule's first retry waits %v, want about 5s", d)
	}
}

// TestBatchCompletesOnce: the jobs of a batch end concurrently, some
// before the submit set the batch's count; batch.completed is enqueued
// exactly once, and each job with a webhook gets its own event.
func TestBatchCompletesOnce(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	store := jobs.NewStore(rdb, time.Hour)
	n := New(Config{Redis: rdb, Store: store, Retention: time.Hour})
	const total = 40
	now := time.Now()
	rdb.HSet(ctx, jobs.BatchKey("b1"), FieldTenant, "acme", FieldModel, "echo", FieldTier, "bulk",
		FieldCreatedAt, MS(now), FieldWebhookURL, "https://example.com/hook")
	var js []*jobs.Job
	for i := 0; i < total; i++ {
		j := &jobs.Job{ID: jobs.NewIDIn(jobs.ShardOf("b1")), Tenant: "acme", Tier: "bulk", Model: "echo", BatchID: "b1",
			CreatedAt: now, Deadline: now.Add(time.Hour)}
		if i%10 == 0 {
			j.WebhookURL = "https://example.com/job"
		}
		if err := store.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
		rdb.RPush(ctx, JobsKey("b1"), j.ID)
		js = append(js, j)
	}
	finish := func(j *jobs.Job) {
		_, _ = store.Transition(ctx, j.ID, j.Tenant, jobs.Scheduled, jobs.Update{})
		_, _ = store.Transition(ctx, j.ID, j.Tenant, jobs.Running, jobs.Update{})
		if err := store.Finish(ctx, j, jobs.Succeeded, jobs.Update{}); err != nil {
			t.Error(err)
		}
		if err := n.Finished(ctx, j.ID, jobs.Succeeded); err != nil {
			t.Error(err)
		}
	}
	// Half end before the count is set: no completion yet.
	for _, j := range js[:total/2] {
		finish(j)
	}
	if err := n.CheckBatch(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, jobs.BatchKey("b1"), FieldJobs, total)
	var wg sync.WaitGroup
	for _, j := range js[total/2:] {
		wg.Add(1)
		go func() { defer wg.Done(); finish(j) }()
	}
	// The submit's own check races the last finishers.
	wg.Add(1)
	go func() { defer wg.Done(); _ = n.CheckBatch(ctx, "b1") }()
	wg.Wait()
	_ = n.CheckBatch(ctx, "b1")

	in := asynq.NewInspectorFromRedisClient(rdb)
	tasks, err := in.ListPendingTasks(webhook.QueueName, asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]int{}
	for _, ti := range tasks {
		var d webhook.Delivery
		if err := json.Unmarshal(ti.Payload, &d); err != nil {
			t.Fatal(err)
		}
		byType[d.Type]++
		if d.Type == webhook.EventBatchCompleted {
			var ev struct{ Data Batch }
			if err := json.Unmarshal(d.Body, &ev); err != nil {
				t.Fatal(err)
			}
			b := ev.Data
			if b.ID != "b1" || !b.Done || b.Jobs != total || b.Counts.Succeeded != total || b.MetDeadline != total ||
				ti.ID != EventID("b1", webhook.EventBatchCompleted) || d.URL != "https://example.com/hook" {
				t.Fatalf("batch.completed: %+v (task %s, url %s)", b, ti.ID, d.URL)
			}
		}
	}
	if byType[webhook.EventBatchCompleted] != 1 || byType[webhook.EventJobSucceeded] != total/10 {
		t.Fatalf("enqueued %v, want 1 batch.completed and %d job.succeeded", byType, total/10)
	}
	// Completion started the batch's retention clock.
	if ttl := rdb.TTL(ctx, JobsKey("b1")).Val(); ttl <= 0 {
		t.Fatalf("job list TTL %v after completion", ttl)
	}
	// Notifying a job again sends no second, different event.
	if err := n.Finished(ctx, js[0].ID, jobs.Succeeded); err != nil {
		t.Fatal(err)
	}
	if again, _ := in.ListPendingTasks(webhook.QueueName, asynq.PageSize(1000)); len(again) != len(tasks) {
		t.Fatalf("%d tasks after a repeated notice, want %d", len(again), len(tasks))
	}
}
