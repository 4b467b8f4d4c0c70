package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/queue"
)

// TestNATSRunLeaderKilled: a fleet on a three-node NATS cluster, its
// streams and buckets R3, under steady load (single jobs inline and in S3,
// batches, all with webhooks). The node that leads the RUN stream is
// SIGKILLed, then restarted. Every job answered 202 ends exactly once,
// with the right result and one webhook; 503s while the stream elects a
// new leader are allowed.
func TestNATSRunLeaderKilled(t *testing.T) {
	f := startFleetNATS(t, fleettest.Options{
		Workers: 2, Schedulers: 2,
		// A job whose ack was lost with the node comes back in 5 s, not 30.
		Env: []string{"INFERQ_ACK_WAIT=5s"},
	}, 3)
	cl := f.back.NATSCluster
	leaders := watchLeaders(t, f)
	l := fleettest.StartLoad(t, f.Fleet, fleettest.LoadOptions{})
	ctx := ctxT(t, 3*time.Minute)

	time.Sleep(3 * time.Second)
	before := l.Accepted()
	leader, err := cl.StreamLeader(ctx, queue.RunStream)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killing %s, the RUN stream's leader, with %d jobs accepted", leader.Name, before)
	leader.Kill()
	time.Sleep(5 * time.Second)
	during := l.Accepted()
	if err := leader.Restart(); err != nil {
		t.Fatal(err)
	}
	// Elections on a loaded machine can take several seconds: the load
	// runs on until the fleet takes jobs again.
	for l.Accepted() < during+20 && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	c := l.Settle(ctx)
	c.Log(t)
	if c.Err() != nil {
		dumpQueues(t, f)
	}
	t.Logf("accepted: %d before the kill, %d while %s was down, %d after its restart", before, during-before, leader.Name, c.Accepted-during)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if before == 0 || c.Accepted == during {
		t.Fatalf("the load did not run both before the fault and after it (%d before, %d after): the test proved nothing", before, c.Accepted-during)
	}
	if now, err := cl.StreamLeader(ctx, queue.RunStream); err != nil || now == nil {
		t.Fatalf("RUN has no leader after the restart: %v", err)
	}
	// A lease lost to the restart changes hands within its TTL: one
	// scheduler must lead by then, not necessarily at this very instant.
	most, now := leaders()
	for deadline := time.Now().Add(30 * time.Second); now != 1 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		most, now = leaders()
	}
	if most > 1 || now != 1 {
		t.Fatalf("schedulers leading: at most %d at once during the test, %d at its end; want never more than one, and one", most, now)
	}
}

// watchLeaders samples the schedulers' inferq_scheduler_leader until the
// test ends; the function it returns tells the most that led at once and
// how many lead now. A deposed leader stops before its lease can expire
// (a third of the TTL before), so sampling every 100 ms sees any overlap
// that is not a bug only if the sampling itself stalls for seconds.
func watchLeaders(t *testing.T, f *fleet) func() (most, now int) {
	count := func() int {
		n := 0
		for _, s := range f.Schedulers {
			if schedulerMetric(s.URL, "inferq_scheduler_leader") == "1" {
				n++
			}
		}
		return n
	}
	var mu sync.Mutex
	most := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			n := count()
			mu.Lock()
			most = max(most, n)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() (int, int) {
		now := count()
		mu.Lock()
		defer mu.Unlock()
		return max(most, now), now
	}
}

// schedulerMetric reads one unlabelled metric of the process at url ("" if
// absent).
func schedulerMetric(url, name string) string {
	for _, line := range metricLines(url) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// metricLines reads the /metrics of the process at url (nil when it does
// not answer).
func metricLines(url string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Split(string(b), "\n")
}

// dumpQueues logs where the jobs of a stalled cluster fleet sit: the
// consumers' counts and leaders, and the schedulers' queue metrics.
func dumpQueues(t *testing.T, f *fleet) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(f.back.NATSURL())
	if err != nil {
		t.Log(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, sc := range [][2]string{{queue.JobsStream, queue.SchedulerConsumer}, {queue.RunStream, queue.RunConsumer("echo")}} {
		cons, err := js.Consumer(ctx, sc[0], sc[1])
		if err != nil {
			t.Logf("consumer %s/%s: %v", sc[0], sc[1], err)
			continue
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			t.Logf("consumer %s/%s: %v", sc[0], sc[1], err)
			continue
		}
		t.Logf("consumer %s/%s: pending %d ack-pending %d waiting %d redelivered %d leader %+v", sc[0], sc[1], ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.NumRedelivered, ci.Cluster)
	}
	for _, s := range f.Schedulers {
		for _, line := range metricLines(s.URL) {
			if strings.HasPrefix(line, "inferq_scheduler_leader") || strings.HasPrefix(line, "inferq_queue_depth_jobs") || strings.HasPrefix(line, "inferq_worker_slots") || strings.HasPrefix(line, "inferq_scheduler_dispatched_total") {
				t.Logf("%s: %s", s.Name, line)
			}
		}
	}
}

// TestRunConsumerDeletedUnderWorker: a model's run consumer deleted while
// workers pull from it (what a meta-leader election on a NATS cluster can
// leave behind, as it did to the scheduler's consumer) is recreated, and
// jobs of the model still run.
func TestRunConsumerDeletedUnderWorker(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	c := f.client("acme")
	ctx := ctxT(t, 2*time.Minute)
	first, err := c.SubmitBytes(ctx, "echo", []byte("before"), "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(f.back.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteConsumer(ctx, queue.RunStream, queue.RunConsumer("echo")); err != nil {
		t.Fatal(err)
	}
	in := []byte("after the consumer was deleted")
	j, err := c.SubmitBytes(ctx, "echo", in, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, done, in)
}
