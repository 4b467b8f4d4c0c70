package scheduler

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

type rig struct {
	store *jobs.Store
	blob  *blob.Store
	js    jetstream.JetStream
	up    *Upkeep
}

func newRig(t *testing.T, retention time.Duration) *rig {
	t.Helper()
	if testing.Short() {
		t.Skip("upkeep test: starts Redis, NATS and MinIO; skipped in -short mode")
	}
	dir := t.TempDir()
	back, err := fleettest.StartBacking(dir, nil, "upkeep")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Stop(); back.MinIO.Stop(5 * time.Second) })
	rdb := redis.NewClient(&redis.Options{Addr: back.Redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	bs, err := blob.Open(blob.Config{Endpoint: back.MinIO.Addr, AccessKey: fleettest.MinIOUser, SecretKey: fleettest.MinIOPassword, Bucket: "upkeep"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://" + back.NATS.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if err := queue.Streams(context.Background(), js, 1); err != nil {
		t.Fatal(err)
	}
	r := &rig{store: jobs.NewStore(rdb, retention), blob: bs, js: js}
	r.up = &Upkeep{Store: r.store, Blob: bs, JS: js, ReapAfter: time.Minute, Log: slog.New(slog.DiscardHandler)}
	return r
}

func (r *rig) job(t *testing.T, to jobs.State) *jobs.Job {
	ctx := context.Background()
	now := time.Now()
	j := &jobs.Job{ID: jobs.NewID(), Tenant: "t", Tier: "bulk", Model: "echo", CreatedAt: now, Deadline: now.Add(time.Hour)}
	j.InputKey = blob.InputKey("t", j.ID)
	if _, err := r.blob.Put(ctx, j.InputKey, bytes.NewReader([]byte("in")), 2, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := r.store.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	_, _ = r.store.Transition(ctx, j.ID, j.Tenant, jobs.Scheduled, jobs.Update{})
	_, _ = r.store.Transition(ctx, j.ID, j.Tenant, jobs.Running, jobs.Update{StartedAt: now, CountAttempt: true})
	if to.Terminal() {
		if err := r.store.Finish(ctx, j, to, jobs.Update{Result: []byte(`{"x":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

func TestExpire(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	old, fresh := r.job(t, jobs.Succeeded), r.job(t, jobs.Succeeded)
	running := r.job(t, jobs.Running)
	// Two hours on, both finished jobs are past the retention... but only
	// as far as the clock given says.
	if n, err := r.up.Expire(ctx, time.Now().Add(30*time.Minute)); err != nil || n != 0 {
		t.Fatalf("expire within retention: %d, %v", n, err)
	}
	n, err := r.up.Expire(ctx, time.Now().Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("expired %d (%v), want 2", n, err)
	}
	for _, j := range []*jobs.Job{old, fresh} {
		got, err := r.store.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != jobs.Expired || got.Result != nil {
			t.Fatalf("after expiry: %s result %s", got.Status, got.Result)
		}
		if _, err := r.blob.Get(ctx, j.InputKey, 10); err == nil {
			t.Fatalf("input of expired job %s still stored", j.ID)
		}
	}
	if got, _ := r.store.Get(ctx, running.ID); got.Status != jobs.Running {
		t.Fatalf("a running job was touched: %s", got.Status)
	}
	if n, _ := r.up.Expire(ctx, time.Now().Add(2*time.Hour)); n != 0 {
		t.Fatalf("expired %d on a second pass, want 0", n)
	}
}

func TestReap(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	stuck := r.job(t, jobs.Running)
	done := r.job(t, jobs.Succeeded)
	cons, err := queue.EnsureRunConsumer(ctx, r.js, "echo", time.Minute, 5)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.up.Reap(ctx, time.Now()); n != 0 {
		t.Fatalf("reaped %d jobs running for less than ReapAfter", n)
	}
	n, err := r.up.Reap(ctx, time.Now().Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("reaped %d (%v), want 1", n, err)
	}
	b, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range b.Messages() {
		msg, err := jobs.DecodeMessage(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msg.ID)
	}
	if len(got) != 1 || got[0] != stuck.ID {
		t.Fatalf("run messages %v, want only the stuck job %s (not %s)", got, stuck.ID, done.ID)
	}
	// Its clock restarted: not reaped again at once.
	if n, _ := r.up.Reap(ctx, time.Now().Add(2*time.Minute)); n != 0 {
		t.Fatalf("reaped again at once: %d", n)
	}
}
