package e2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
)

// TestFleetOnRedisCluster: the whole fleet on a three-primary Redis
// Cluster (INFERQ_REDIS_URL in go-redis's cluster form). Single jobs
// inline and in S3 and batches, all with webhooks, end exactly once with
// the right result; a cancel, a GET of a result and a batch's results
// work. Any multi-key step across slots would fail with CROSSSLOT.
func TestFleetOnRedisCluster(t *testing.T) {
	f := startFleetOn(t, fleettest.Options{}, func(dir, bucket string) (*fleettest.Backing, error) {
		return fleettest.StartBackingRedisCluster(dir, sharedS3, bucket)
	})
	ctx := ctxT(t, 2*time.Minute)
	c := f.client("acme")

	l := fleettest.StartLoad(t, f.Fleet, fleettest.LoadOptions{BatchEvery: time.Second})
	time.Sleep(3 * time.Second)
	counts := l.Settle(ctx)
	counts.Log(t)
	if err := counts.Err(); err != nil {
		t.Fatal(err)
	}
	if counts.Accepted == 0 || counts.Batches == 0 {
		t.Fatalf("the load submitted %d jobs and %d batches: the test proved nothing", counts.Accepted, counts.Batches)
	}

	in := []byte("on a cluster")
	j, err := c.Submit(ctx, client.Submit{Model: "echo", Input: bytes.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = c.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	checkEcho(t, j, in)
	if got, err := c.Get(ctx, j.ID, 0); err != nil || got.Status != "succeeded" {
		t.Fatalf("GET %s: %+v, %v", j.ID, got, err)
	}

	// A job behind a slow one is still queued or running when canceled.
	for range 2 {
		if _, err := c.Submit(ctx, client.Submit{Model: "slow", Input: strings.NewReader("busy")}); err != nil {
			t.Fatal(err)
		}
	}
	late, err := c.Submit(ctx, client.Submit{Model: "slow", Input: strings.NewReader("late")})
	if err != nil {
		t.Fatal(err)
	}
	if cj, err := c.Cancel(ctx, late.ID); err != nil || cj.Status != "canceled" {
		t.Fatalf("cancel %s: %+v, %v", late.ID, cj, err)
	}

	b, err := c.SubmitBatch(ctx, client.BatchSubmit{Model: "echo", Files: []client.File{
		{Name: "a.bin", Reader: strings.NewReader("first")}, {Name: "b.bin", Reader: strings.NewReader("second")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err = c.WaitBatch(ctx, b.ID, 100*time.Millisecond, nil); err != nil || b.Status != "completed" {
		t.Fatalf("batch %+v, %v", b, err)
	}
	res, err := c.BatchResults(ctx, b.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	n := 0
	for res.Next() {
		if res.Job().Status != "succeeded" || len(res.Job().Result) == 0 {
			t.Fatalf("batch result %s", res.Raw())
		}
		n++
	}
	if res.Err() != nil || n != 2 {
		t.Fatalf("batch results: %d, %v; want 2", n, res.Err())
	}
}
