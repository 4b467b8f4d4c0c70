package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/queue"
)

// endings counts each job's terminal events on the fleet's NATS.
type endings struct {
	mu sync.Mutex
	n  map[string]int
	by map[string]string
}

func watchEndings(t *testing.T, f *fleet) *endings {
	e := &endings{n: map[string]int{}, by: map[string]string{}}
	nc, err := nats.Connect("nats://" + f.back.NATS.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe("jobs.events.>", func(m *nats.Msg) {
		var ev queue.Event
		if json.Unmarshal(m.Data, &ev) == nil && ev.Status.Terminal() {
			e.mu.Lock()
			e.n[ev.ID]++
			e.by[ev.ID] = string(ev.Status)
			e.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	return e
}

// exactlyOnce waits for every job to end and checks each ended once, with
// status want.
func (e *endings) exactlyOnce(t *testing.T, c *client.Client, ids []string, want string) {
	t.Helper()
	ctx := ctxT(t, 3*time.Minute)
	for _, id := range ids {
		j, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != want {
			t.Fatalf("job %s: %s %+v, want %s", id, j.Status, j.Error, want)
		}
	}
	time.Sleep(time.Second) // a duplicate ending would show by now
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if e.n[id] != 1 {
			t.Fatalf("job %s ended %d times, want exactly once", id, e.n[id])
		}
	}
}

func submitSlow(t *testing.T, c *client.Client, n int) []string {
	ctx := ctxT(t, time.Minute)
	var ids []string
	for i := 0; i < n; i++ {
		j, err := c.Submit(ctx, client.Submit{Model: "slow", Input: strings.NewReader("job")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	return ids
}

func waitRunning(t *testing.T, c *client.Client, ids []string) {
	ctx := ctxT(t, time.Minute)
	for {
		for _, id := range ids {
			if j, err := c.Get(ctx, id, 0); err == nil && j.Status == "running" {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no job started running")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWorkerKilledUnderLoad: SIGKILL of a worker in the middle of a batch,
// with many jobs queued: every job ends exactly once.
func TestWorkerKilledUnderLoad(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_ACK_WAIT=2s"}})
	e := watchEndings(t, f)
	c := f.client("globex")
	ids := submitSlow(t, c, 40)
	waitRunning(t, c, ids)
	f.Workers[0].Signal(syscall.SIGKILL)
	f.Workers[0].Wait(10 * time.Second)
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	e.exactlyOnce(t, c, ids, "succeeded")
}

// TestWorkerDrainsOnSIGTERM: SIGTERM under load finishes the batch in
// hand, leaves nothing running, and exits in bounded time; another worker
// finishes the rest.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_DRAIN_TIMEOUT=20s"}})
	e := watchEndings(t, f)
	c := f.client("globex")
	ids := submitSlow(t, c, 40)
	waitRunning(t, c, ids)
	w := f.Workers[0]
	w.Signal(syscall.SIGTERM)
	if !w.Wait(30 * time.Second) {
		t.Fatal("worker still running 30s after SIGTERM (drain timeout 20s)")
	}
	if code := w.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("worker exit code %d after SIGTERM, want 0", code)
	}
	// Nothing is left running: the batch in hand finished and was acked.
	for _, id := range ids {
		j, err := c.Get(ctxT(t, time.Minute), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == "running" {
			t.Fatalf("job %s left running by a drained worker", id)
		}
	}
	if _, err := f.StartWorker(); err != nil {
		t.Fatal(err)
	}
	e.exactlyOnce(t, c, ids, "succeeded")
	for _, id := range ids {
		if j, _ := c.Get(ctxT(t, time.Minute), id, 0); j.Attempts != 1 {
			t.Fatalf("job %s ran %d times, want once (a drain hands back only what it did not start)", id, j.Attempts)
		}
	}
}

// TestS3Outage: S3 unreachable for a while under load: jobs wait, /readyz
// says why, and then they finish; none fails for it.
func TestS3Outage(t *testing.T) {
	f, own := startFleetOwnS3(t, nil)
	fl := f.Fleet
	e := watchEndings(t, f)
	c := f.client("globex")
	ids := submitSlow(t, c, 48)
	waitRunning(t, c, ids)
	own.stop()
	// The worker holds what it cannot fetch and says so.
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(fl.Workers[0].URL + "/readyz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 && strings.Contains(string(b), "s3") {
			body = string(b)
			break
		}
	}
	if body == "" {
		t.Fatal("worker /readyz never reported the S3 outage")
	}
	time.Sleep(3 * time.Second)
	e.mu.Lock()
	for id, st := range e.by {
		if st == "failed" {
			e.mu.Unlock()
			t.Fatalf("job %s failed during the outage", id)
		}
	}
	e.mu.Unlock()
	own.restart(t)
	e.exactlyOnce(t, c, ids, "succeeded")
}

// ownS3 is a test's own MinIO, which it may stop and start again.
type ownS3 struct{ srv *fleettest.Server }

func (o *ownS3) stop() { o.srv.Stop(5 * time.Second) }

func (o *ownS3) restart(t *testing.T) {
	t.Helper()
	srv, err := fleettest.RestartMinIO(o.srv)
	if err != nil {
		t.Fatal(err)
	}
	o.srv = srv
}

// startFleetOwnS3 starts a fleet of one worker on a MinIO of the test's
// own (not the shared one), with env added to every process.
func startFleetOwnS3(t *testing.T, env []string) (*fleet, *ownS3) {
	t.Helper()
	dir := t.TempDir()
	srv, err := fleettest.StartMinIO(dir)
	if err != nil {
		t.Fatal(err)
	}
	own := &ownS3{srv: srv}
	t.Cleanup(own.stop)
	back, err := fleettest.StartBacking(dir, srv, "own")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Stop)
	fl, err := fleettest.StartFleet(fleettest.Options{Dir: dir, Bin: binDir, ModelsDir: modelsDir, Backing: back, Workers: 1, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fl.Stop)
	return &fleet{Fleet: fl, back: back}, own
}

// TestPoisonJob: a job that kills every worker that runs it ends failed
// with max_attempts after MaxDeliver tries; the other jobs finish.
func TestPoisonJob(t *testing.T) {
	f := startFleet(t, fleettest.Options{Env: []string{"INFERQ_ACK_WAIT=2s", "INFERQ_MAX_DELIVER=3"}})
	e := watchEndings(t, f)
	c := f.client("globex")
	ctx := ctxT(t, 3*time.Minute)
	poison, err := c.Submit(ctx, client.Submit{Model: "slow", Input: strings.NewReader("poison")})
	if err != nil {
		t.Fatal(err)
	}
	// Whenever the poison job runs, the worker running it dies.
	for kills := 0; kills < 3; kills++ {
		waitRunning(t, c, []string{poison.ID})
		w := f.Workers[len(f.Workers)-1]
		w.Signal(syscall.SIGKILL)
		w.Wait(10 * time.Second)
		if _, err := f.StartWorker(); err != nil {
			t.Fatal(err)
		}
		if kills < 2 {
			// Wait for the redelivery to start it again.
			for j, _ := c.Get(ctx, poison.ID, 0); j.Attempts <= kills+1 && ctx.Err() == nil; j, _ = c.Get(ctx, poison.ID, 0) {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	others := make([]string, 0, 10)
	for i := 0; i < 10; i++ {
		j, err := c.SubmitBytes(ctx, "echo", []byte("fine"), "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, j.ID)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done, err := c.Wait(wctx, poison.ID)
	if err != nil {
		last, _ := c.Get(ctx, poison.ID, 0)
		_, j := js(t, f)
		ci, _ := j.Consumer(ctx, queue.RunStream, queue.RunConsumer("slow"))
		info, _ := ci.Info(ctx)
		t.Fatalf("poison job did not end: %v; last %+v; consumer %+v", err, last, info)
	}
	if done.Status != "failed" || done.Error == nil || done.Error.Code != "max_attempts" || done.Attempts != 3 {
		t.Fatalf("poison job: %s attempts %d error %+v, want failed max_attempts after 3", done.Status, done.Attempts, done.Error)
	}
	e.exactlyOnce(t, c, others, "succeeded")
	e.exactlyOnce(t, c, []string{poison.ID}, "failed")
}

// TestOutageSpendsNoAttempts: an S3 outage longer than the worker's hold
// limit makes it hand jobs back again and again, which spends their
// deliveries; that must not end healthy jobs as max_attempts. Once S3 is
// back, every job succeeds, once.
func TestOutageSpendsNoAttempts(t *testing.T) {
	f, own := startFleetOwnS3(t, []string{"INFERQ_INLINE_INPUT_BYTES=0", "INFERQ_MAX_DELIVER=2", "INFERQ_HOLD_LIMIT=1s"})
	fl := f.Fleet
	e := watchEndings(t, f)
	c := f.client("globex")
	ctx := ctxT(t, 2*time.Minute)
	// The worker is held until S3 is down, so that it cannot run the
	// jobs (echo takes milliseconds) before the outage.
	fl.Workers[0].Signal(syscall.SIGSTOP)
	var ids []string
	for i := range 8 {
		j, err := c.Submit(ctx, client.Submit{Model: "echo", Input: strings.NewReader(fmt.Sprintf("held %d", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	own.stop()
	fl.Workers[0].Signal(syscall.SIGCONT)
	// Two hand-backs (each after the 1 s hold and S3 client's own
	// retries, with a 5 s delay) take the jobs past INFERQ_MAX_DELIVER=2.
	anyFailed := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, st := range e.by {
			if st == "failed" {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(90 * time.Second); !anyFailed() && !strings.Contains(readFile(t, fl.Workers[0].Log), "queued again"); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			log := readFile(t, fl.Workers[0].Log)
			t.Fatalf("no job reached max deliveries during the outage: the test proved nothing\n%s", log[max(0, len(log)-4000):])
		}
	}
	e.mu.Lock()
	for id, st := range e.by {
		if st == "failed" {
			e.mu.Unlock()
			j, _ := c.Get(ctx, id, 0)
			t.Fatalf("job %s failed during the outage: %+v", id, j.Error)
		}
	}
	e.mu.Unlock()
	own.restart(t)
	e.exactlyOnce(t, c, ids, "succeeded")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
