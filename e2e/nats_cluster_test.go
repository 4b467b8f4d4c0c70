package e2e

import (
	"testing"
	"time"

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
	l := fleettest.StartLoad(t, f.Fleet, fleettest.LoadOptions{})
	ctx := ctxT(t, 90*time.Second)

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
	time.Sleep(3 * time.Second)
	c := l.Settle(ctx)
	c.Log(t)
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
}
