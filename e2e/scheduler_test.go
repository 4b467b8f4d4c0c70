package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// submitMany submits n echo jobs for tenant with a few requests in flight
// and returns their ids in submit order.
func submitMany(t *testing.T, ctx context.Context, c *client.Client, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 24)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j, err := c.SubmitBytes(ctx, "echo", []byte(strconv.Itoa(i)), "text/plain")
			if err != nil {
				errs <- err
				return
			}
			ids[i] = j.ID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

func js(t *testing.T, f *fleet) (*nats.Conn, jetstream.JetStream) {
	nc, err := nats.Connect("nats://" + f.back.NATS.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	j, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, j
}

// TestLateDispatch: with no worker running, submitted jobs stay with the
// scheduler (the run stream stays empty); a premium job submitted after
// thousands of bulk jobs runs first once a worker starts.
func TestLateDispatch(t *testing.T) {
	const bulk = 10000
	f := startFleet(t, fleettest.Options{Workers: -1})
	ctx := ctxT(t, 5*time.Minute)
	start := time.Now()
	bulkIDs := submitMany(t, ctx, f.client("initech"), bulk)
	t.Logf("%d bulk jobs submitted in %s", bulk, time.Since(start).Round(time.Millisecond))
	premium, err := f.client("acme").SubmitBytes(ctx, "echo", []byte("urgent"), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	_, j := js(t, f)
	// Let the scheduler take everything in, then look at the streams.
	time.Sleep(2 * time.Second)
	run, err := j.Stream(ctx, queue.RunStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := run.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("run stream holds %d jobs with no worker running, want 0", info.State.Msgs)
	}
	if j, _ := f.client("acme").Get(ctx, premium.ID, 0); j.Status != "queued" {
		t.Fatalf("premium job is %s before any worker runs, want queued", j.Status)
	}
	if _, err := f.StartWorker("INFERQ_MODELS=echo"); err != nil {
		t.Fatal(err)
	}
	done, err := f.client("acme").Wait(ctx, premium.ID)
	if err != nil {
		t.Fatal(err)
	}
	// (Whether it met its 5 s deadline depends on how long the worker took
	// to start; what matters here is that it went first.)
	if done.Status != "succeeded" {
		t.Fatalf("premium job: %s %+v", done.Status, done.Error)
	}
	rdb := redis.NewClient(&redis.Options{Addr: f.back.Redis.Addr})
	defer rdb.Close()
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(bulkIDs))
	for i, id := range bulkIDs {
		cmds[i] = pipe.HGet(ctx, jobs.RecordKey(id), "started_at")
	}
	_, _ = pipe.Exec(ctx)
	premiumStart := done.StartedAt.UnixMilli()
	started := 0
	for i, c := range cmds {
		ms, err := c.Int64()
		if err != nil {
			continue // not started yet
		}
		started++
		if ms < premiumStart {
			t.Fatalf("bulk job %d started at %d, before the premium job (%d)", i, ms, premiumStart)
		}
	}
	t.Logf("when the premium job finished, %d of %d bulk jobs had started", started, bulk)
}

// TestSchedulerFailover: the leading scheduler is killed under load; the
// standby takes over; every accepted job ends exactly once.
func TestSchedulerFailover(t *testing.T) {
	f := startFleet(t, fleettest.Options{Schedulers: 2})
	ctx := ctxT(t, 3*time.Minute)
	nc, j := js(t, f)
	var mu sync.Mutex
	terminal := map[string]int{}
	sub, err := nc.Subscribe("jobs.events.>", func(m *nats.Msg) {
		var ev queue.Event
		if json.Unmarshal(m.Data, &ev) == nil && ev.Status.Terminal() {
			mu.Lock()
			terminal[ev.ID]++
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = nc.Flush()
	kv, err := coord.Open(ctx, j, 1)
	if err != nil {
		t.Fatal(err)
	}
	leader := func() *fleettest.Proc {
		holder := coord.Holder(ctx, kv.Lease, "scheduler")
		for _, s := range f.Schedulers {
			if !s.Exited() && strings.HasSuffix(holder, fmt.Sprintf("-%d", s.Cmd.Process.Pid)) {
				return s
			}
		}
		return nil
	}
	first := leader()
	if first == nil {
		t.Fatal("no scheduler holds the lease")
	}
	var ids []string
	var wg sync.WaitGroup
	for _, tenant := range []string{"acme", "globex", "initech"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := submitMany(t, ctx, f.client(tenant), 150)
			mu.Lock()
			ids = append(ids, got...)
			mu.Unlock()
		}()
	}
	time.Sleep(300 * time.Millisecond) // under load
	first.Signal(syscall.SIGKILL)
	killed := time.Now()
	first.Wait(10 * time.Second)
	wg.Wait()
	var second *fleettest.Proc
	for second == nil && time.Since(killed) < 20*time.Second {
		time.Sleep(100 * time.Millisecond)
		second = leader()
	}
	if second == nil || second == first {
		t.Fatal("the standby did not take the lease")
	}
	t.Logf("standby leads %s after the kill", time.Since(killed).Round(time.Millisecond))
	more := submitMany(t, ctx, f.client("globex"), 50) // and it dispatches
	ids = append(ids, more...)
	c := map[string]*client.Client{}
	for _, name := range []string{"acme", "globex", "initech"} {
		c[name] = f.client(name)
	}
	for _, id := range ids {
		var job *client.Job
		for _, cl := range c { // the id's tenant is one of three
			if jb, err := cl.Wait(ctx, id); err == nil {
				job = jb
				break
			}
		}
		if job == nil || job.Status != "succeeded" {
			t.Fatalf("job %s: %+v", id, job)
		}
	}
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if terminal[id] != 1 {
			t.Fatalf("job %s ended %d times, want exactly once", id, terminal[id])
		}
	}
	t.Logf("%d jobs, each ended exactly once", len(ids))
}
