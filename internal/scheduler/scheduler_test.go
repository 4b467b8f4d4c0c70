package scheduler

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// dispatchRig is a leading scheduler on its own NATS and Redis, with no
// worker: the test plays the workers (their heartbeats, their acks).
type dispatchRig struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	store *jobs.Store
	kv    *coord.Buckets
}

func newDispatchRig(t *testing.T) *dispatchRig {
	t.Helper()
	if testing.Short() {
		t.Skip("scheduler test: starts NATS and Redis; skipped in -short mode")
	}
	rdb := fleettest.Redis(t)
	nc := fleettest.NATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := queue.Streams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	kv, err := coord.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := &dispatchRig{nc: nc, js: js, store: jobs.NewStore(rdb, time.Hour), kv: kv}
	s, err := New(Config{NATS: nc, JS: js, Store: r.store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// worker announces a worker that can hold slots echo jobs.
func (r *dispatchRig) worker(t *testing.T, slots int) {
	t.Helper()
	hb := coord.Heartbeat{Worker: "test-worker", Device: "cpu", At: time.Now(),
		Models: map[string]coord.ModelCapacity{"echo": {Slots: slots, Workers: 1}}}
	if err := coord.Announce(context.Background(), r.kv.Workers, hb); err != nil {
		t.Fatal(err)
	}
}

// submit records a queued echo job and publishes its submitted message,
// data (nil: the job's own message).
func (r *dispatchRig) submit(t *testing.T, data []byte) *jobs.Job {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	j := &jobs.Job{ID: jobs.NewID(), Tenant: "t", Tier: "bulk", Model: "echo", CreatedAt: now, Deadline: now.Add(time.Hour),
		Input: []byte("inline input"), InputSize: 12, ContentType: "text/plain"}
	if err := r.store.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	if data == nil {
		data = jobs.MessageFor(j).Encode()
	}
	if err := queue.Publish(ctx, r.js, queue.SubmitSubject(j.Tier), j.ID, data); err != nil {
		t.Fatal(err)
	}
	return j
}

// jobsLeft is how many submitted messages the scheduler has not acked.
func (r *dispatchRig) jobsLeft(t *testing.T) uint64 {
	t.Helper()
	st, err := r.js.Stream(context.Background(), queue.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// runMessages fetches the run messages there are (waiting up to wait for
// the first), and acks them when ack is set.
func (r *dispatchRig) runMessages(t *testing.T, n int, wait time.Duration, ack bool) []jetstream.Msg {
	t.Helper()
	cons, err := queue.EnsureRunConsumer(context.Background(), r.js, "echo", time.Minute, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range b.Messages() {
		if ack {
			_ = m.Ack()
		}
		out = append(out, m)
	}
	return out
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReleasePass: one dispatch pass publishes the submitted message's
// bytes as they are (an inline input and fields this scheduler does not
// know ride along), publishes again a job a previous pass already marked
// scheduled, drops canceled jobs and jobs without a record, and acks
// every submitted message it is done with.
func TestReleasePass(t *testing.T) {
	r := newDispatchRig(t)
	ctx := context.Background()
	fresh := r.submit(t, nil)
	// A newer producer's message: a field this scheduler does not know.
	newer := &jobs.Job{ID: jobs.NewID(), Tenant: "t", Tier: "bulk", Model: "echo", CreatedAt: time.Now(),
		Deadline: time.Now().Add(time.Hour), Input: []byte("x")}
	newerData := append(bytes.TrimSuffix(jobs.MessageFor(newer).Encode(), []byte("}")), []byte(`,"from_the_future":true}`)...)
	if err := r.store.Create(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if err := queue.Publish(ctx, r.js, queue.SubmitSubject("bulk"), newer.ID, newerData); err != nil {
		t.Fatal(err)
	}
	again := r.submit(t, nil)
	if _, err := r.store.Transition(ctx, again.ID, again.Tenant, jobs.Scheduled, jobs.Update{}); err != nil {
		t.Fatal(err)
	}
	canceled := r.submit(t, nil)
	if _, err := r.store.Transition(ctx, canceled.ID, canceled.Tenant, jobs.Canceled, jobs.Update{FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	gone := r.submit(t, nil)
	if err := r.store.Redis().Del(ctx, jobs.RecordKey(gone.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		fresh.ID: jobs.MessageFor(fresh).Encode(), newer.ID: newerData, again.ID: jobs.MessageFor(again).Encode(),
	}
	r.worker(t, 10)
	got := map[string][]byte{}
	eventually(t, "three run messages", func() bool {
		for _, m := range r.runMessages(t, 10, 200*time.Millisecond, true) {
			msg, err := jobs.DecodeMessage(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			got[msg.ID] = m.Data()
		}
		return len(got) >= len(want)
	})
	for id, data := range want {
		if !bytes.Equal(got[id], data) {
			t.Errorf("run message of %s:\n got %s\nwant %s", id, got[id], data)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("run message for %s, which has nothing to run", id)
		}
	}
	for _, j := range []*jobs.Job{fresh, newer, again} {
		if rec, _ := r.store.Get(ctx, j.ID); rec == nil || rec.Status != jobs.Scheduled {
			t.Errorf("job %s: record %+v, want scheduled", j.ID, rec)
		}
	}
	// The release says when it happened (the console's timeline); a job
	// a previous pass scheduled keeps that pass's time (none, here).
	for j, want := range map[*jobs.Job]bool{fresh: true, newer: true, again: false} {
		if rec, _ := r.store.Get(ctx, j.ID); rec == nil || rec.ScheduledAt.IsZero() == want {
			t.Errorf("job %s: scheduled_at %v, want set: %v", j.ID, rec, want)
		}
	}
	eventually(t, "every submitted message acked", func() bool { return r.jobsLeft(t) == 0 })
}

// TestDispatchWindow: the scheduler fills the workers' slots and no more,
// and fills again what a worker's ack frees.
func TestDispatchWindow(t *testing.T) {
	r := newDispatchRig(t)
	for range 5 {
		r.submit(t, nil)
	}
	r.worker(t, 2)
	count := func() uint64 {
		st, err := r.js.Stream(context.Background(), queue.RunStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	eventually(t, "two run messages", func() bool { return count() >= 2 })
	// Many passes later, still no more than the slots.
	time.Sleep(20 * dispatchTick)
	if n := count(); n != 2 {
		t.Fatalf("run stream holds %d jobs for 2 slots", n)
	}
	// A worker finishes one: its slot is filled again.
	if got := r.runMessages(t, 1, time.Second, true); len(got) != 1 {
		t.Fatalf("fetched %d run messages, want 1", len(got))
	}
	eventually(t, "the freed slot filled", func() bool { return count() == 2 && r.jobsLeft(t) == 2 })
}

// TestCanceledHeldJobDropped: a job canceled while the scheduler holds it
// (here: no worker serves its model) is dropped and its submission acked
// at once, from the cancellation subject, without waiting for a worker.
func TestCanceledHeldJobDropped(t *testing.T) {
	r := newDispatchRig(t)
	ctx := context.Background()
	j := r.submit(t, nil)
	eventually(t, "the scheduler holds the job", func() bool {
		cons, err := r.js.Consumer(ctx, queue.JobsStream, queue.SchedulerConsumer)
		if err != nil {
			return false // not created yet
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 1
	})
	now := time.Now()
	if _, err := r.store.Transition(ctx, j.ID, j.Tenant, jobs.Canceled, jobs.Update{FinishedAt: now}); err != nil {
		t.Fatal(err)
	}
	queue.PublishEvent(r.nc, j.Tenant, j.ID, jobs.Canceled, now)
	eventually(t, "the canceled job's submission acked", func() bool { return r.jobsLeft(t) == 0 })
}

// TestConsumerDeletedUnderLeader: the submitted-jobs consumer deleted
// while the scheduler leads (what a NATS meta-leader election racing the
// leader's reset did in TestNATSRunLeaderKilled) is recreated: jobs held
// before and submitted after are dispatched, each once.
func TestConsumerDeletedUnderLeader(t *testing.T) {
	r := newDispatchRig(t)
	ctx := context.Background()
	before := r.submit(t, nil)
	eventually(t, "the scheduler's consumer", func() bool {
		_, err := r.js.Consumer(ctx, queue.JobsStream, queue.SchedulerConsumer)
		return err == nil
	})
	time.Sleep(200 * time.Millisecond) // the held job reaches the scheduler
	if err := r.js.DeleteConsumer(ctx, queue.JobsStream, queue.SchedulerConsumer); err != nil {
		t.Fatal(err)
	}
	after := r.submit(t, nil)
	r.worker(t, 10)
	got := map[string]int{}
	eventually(t, "both jobs dispatched", func() bool {
		for _, m := range r.runMessages(t, 10, 200*time.Millisecond, true) {
			msg, err := jobs.DecodeMessage(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			got[msg.ID]++
		}
		return got[before.ID] > 0 && got[after.ID] > 0
	})
	eventually(t, "every submitted message acked", func() bool { return r.jobsLeft(t) == 0 })
	time.Sleep(500 * time.Millisecond)
	for _, m := range r.runMessages(t, 10, 200*time.Millisecond, true) {
		msg, _ := jobs.DecodeMessage(m.Data())
		got[msg.ID]++
	}
	if got[before.ID] != 1 || got[after.ID] != 1 {
		t.Fatalf("run messages per job: %v, want one each", got)
	}
}
