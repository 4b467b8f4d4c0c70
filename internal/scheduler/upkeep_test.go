package scheduler

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
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
	rdb   *redis.Client
	back  *fleettest.Backing
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
	// back.MinIO may be a restarted one by then.
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
	r := &rig{store: jobs.NewStore(rdb, retention), blob: bs, js: js, rdb: rdb, back: back}
	r.up = &Upkeep{Store: r.store, Blob: bs, JS: js, ReapAfter: time.Minute, Log: slog.New(slog.DiscardHandler)}
	return r
}

func (r *rig) job(t *testing.T, to jobs.State) *jobs.Job {
	return r.jobWith(t, to, jobOpts{})
}

// jobOpts vary a test job: an inline input has no S3 object (the record's
// input_key is empty); a stored output lies at blob.ResultKey.
type jobOpts struct{ inline, storedOutput bool }

func (r *rig) jobWith(t *testing.T, to jobs.State, o jobOpts) *jobs.Job {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	j := &jobs.Job{ID: jobs.NewID(), Tenant: "t", Tier: "bulk", Model: "echo", CreatedAt: now, Deadline: now.Add(time.Hour)}
	if !o.inline {
		j.InputKey = blob.InputKey("t", j.ID)
		if _, err := r.blob.Put(ctx, j.InputKey, bytes.NewReader([]byte("in")), 2, "text/plain"); err != nil {
			t.Error(err)
			return j
		}
	}
	if o.storedOutput {
		if _, err := r.blob.Put(ctx, blob.ResultKey("t", j.ID), bytes.NewReader([]byte(`{"big":1}`)), 9, "application/json"); err != nil {
			t.Error(err)
			return j
		}
	}
	if err := r.store.Create(ctx, j); err != nil {
		t.Error(err)
		return j
	}
	_, _ = r.store.Transition(ctx, j.ID, j.Tenant, jobs.Scheduled, jobs.Update{})
	_, _ = r.store.Transition(ctx, j.ID, j.Tenant, jobs.Running, jobs.Update{StartedAt: now, CountAttempt: true})
	if to.Terminal() {
		if err := r.store.Finish(ctx, j, to, jobs.Update{Result: []byte(`{"x":1}`)}); err != nil {
			t.Error(err)
		}
	}
	return j
}

// mixed: every fifth job has its input inline, every tenth a stored
// output.
func mixed(i int) jobOpts { return jobOpts{inline: i%5 == 0, storedOutput: i%10 == 1} }

// jobsWith makes n finished jobs shaped by opts, a few at a time.
func (r *rig) jobsWith(t *testing.T, n int, opts func(i int) jobOpts) []*jobs.Job {
	t.Helper()
	out := make([]*jobs.Job, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				out[i] = r.jobWith(t, jobs.Succeeded, opts(i))
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// objects lists the bucket.
func (r *rig) objects(t *testing.T) []string {
	t.Helper()
	var keys []string
	for o := range r.blob.Client().ListObjects(context.Background(), r.blob.Bucket(), minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// doomed is what expiry still has to delete.
func (r *rig) doomed(t *testing.T) []string {
	t.Helper()
	keys, err := r.rdb.ZRange(context.Background(), doomedKey, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func (r *rig) expectExpired(t *testing.T, js []*jobs.Job) {
	t.Helper()
	got, err := r.store.GetMany(context.Background(), ids(js))
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range got {
		if j == nil || j.Status != jobs.Expired || j.Result != nil {
			t.Fatalf("job %s after expiry: %+v", js[i].ID, j)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ids(js []*jobs.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

func TestExpire(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	old, fresh := r.job(t, jobs.Succeeded), r.job(t, jobs.Succeeded)
	inline := r.jobWith(t, jobs.Failed, jobOpts{inline: true, storedOutput: true})
	running := r.job(t, jobs.Running)
	// Two hours on, both finished jobs are past the retention... but only
	// as far as the clock given says.
	if n, err := r.up.Expire(ctx, time.Now().Add(30*time.Minute)); err != nil || n != 0 {
		t.Fatalf("expire within retention: %d, %v", n, err)
	}
	n, err := r.up.Expire(ctx, time.Now().Add(2*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("expired %d (%v), want 3", n, err)
	}
	r.expectExpired(t, []*jobs.Job{inline})
	if _, err := r.blob.Get(ctx, blob.ResultKey(inline.Tenant, inline.ID), 10); err == nil {
		t.Fatalf("stored output of expired job %s still stored", inline.ID)
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

// TestExpireKeepsUp: one run expires every job that is due, however many
// (the fleet ends hundreds a second; one page of 500 per 30 s run was
// about 17 a second), and deletes every input and stored output with
// them; inline inputs have no object to delete.
func TestExpireKeepsUp(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	const n = 2*expiryPage + 100
	done := r.jobsWith(t, n, mixed)
	running := r.job(t, jobs.Running)
	want := 1 // the running job's input
	for i := range n {
		want += b2i(i%5 != 0) + b2i(i%10 == 1)
	}
	if objs := r.objects(t); len(objs) != want {
		t.Fatalf("%d objects before expiry, want %d", len(objs), want)
	}
	start := time.Now()
	got, err := r.up.Expire(ctx, time.Now().Add(2*time.Hour))
	if err != nil || got != n {
		t.Fatalf("one run expired %d (%v), want all %d", got, err, n)
	}
	t.Logf("expired %d jobs in %s", n, time.Since(start).Round(time.Millisecond))
	r.expectExpired(t, done)
	if objs := r.objects(t); len(objs) != 1 || objs[0] != running.InputKey {
		t.Fatalf("objects left after expiry: %d (%.3v), want only the running job's input", len(objs), objs)
	}
	if d := r.doomed(t); len(d) != 0 {
		t.Fatalf("%d objects still noted for deletion", len(d))
	}
}

// TestExpireHoldsRecords: a finished job's record no longer runs out
// (retention + grace after it finished) before expiry has read it: past
// the grace it used to vanish unexpired, with the only note of its input,
// which was then never deleted. Expiry gives it the grace back when it
// expires it. An index entry whose record is gone anyway (from before the
// hold) is dropped, not retried forever.
func TestExpireHoldsRecords(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	j := r.jobWith(t, jobs.Succeeded, jobOpts{storedOutput: true})
	lost := r.job(t, jobs.Failed)
	if ttl := r.rdb.PTTL(ctx, jobs.RecordKey(j.ID)).Val(); ttl <= 0 {
		t.Fatalf("a finished record's TTL: %v, want the retention and grace", ttl)
	}
	if n, err := r.up.Expire(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("expire with nothing due: %d, %v", n, err)
	}
	if ttl := r.rdb.PTTL(ctx, jobs.RecordKey(j.ID)).Val(); ttl != -1 {
		t.Fatalf("after an upkeep run the finished record's TTL is %v, want none until it expires", ttl)
	}
	r.rdb.Del(ctx, jobs.RecordKey(lost.ID))
	n, err := r.up.Expire(ctx, time.Now().Add(time.Hour+jobs.ExpiredGrace+time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("expired %d (%v), want 1", n, err)
	}
	r.expectExpired(t, []*jobs.Job{j})
	if ttl := r.rdb.PTTL(ctx, jobs.RecordKey(j.ID)).Val(); ttl <= 0 || ttl > jobs.ExpiredGrace {
		t.Fatalf("an expired record's TTL: %v, want the grace", ttl)
	}
	// Another run must not hold an expired record.
	if _, err := r.up.Expire(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ttl := r.rdb.PTTL(ctx, jobs.RecordKey(j.ID)).Val(); ttl <= 0 {
		t.Fatalf("an expired record held: TTL %v", ttl)
	}
	if objs := r.objects(t); len(objs) != 1 || objs[0] != lost.InputKey {
		t.Fatalf("objects left: %v, want only the input of the job whose record was lost", objs)
	}
	if err := r.rdb.ZScore(ctx, jobs.FinishedIndex(jobs.ShardOf(lost.ID)), lost.ID).Err(); err == nil {
		t.Fatalf("the job whose record was lost is still in the finished index")
	}
}

// TestExpireHoldsBacklogInSlices: the first run of this version, or one
// after a long outage, has many finished records to hold; it holds them
// a slice a run (a page of one shard's index, oldest first, with no time
// left), and each run goes on where the last stopped, however close
// together their finish times are, until every shard is held.
func TestExpireHoldsBacklogInSlices(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	const n = 2*expiryPage + 500
	done := r.jobsWith(t, n, func(int) jobOpts { return jobOpts{inline: true} })
	r.up.ExpiryBudget = time.Nanosecond // one page of holding a run
	held := func() int {
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.DurationCmd, len(done))
		for i, j := range done {
			cmds[i] = pipe.PTTL(ctx, jobs.RecordKey(j.ID))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, c := range cmds {
			if c.Val() == -1 {
				k++
			}
		}
		return k
	}
	prev := 0
	for run := 1; prev < n; run++ {
		if run > jobs.Shards+3 {
			t.Fatalf("%d of %d records held after %d runs", prev, n, run-1)
		}
		if _, err := r.up.Expire(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		h := held()
		t.Logf("run %d: %d of %d records held", run, h, n)
		if h <= prev || h > prev+expiryPage {
			t.Fatalf("run %d: %d records held (%d before), want at most one more page", run, h, prev)
		}
		prev = h
	}
}

// TestExpireAfterS3Outage: jobs that expire while S3 is down still
// expire, and their objects are deleted once S3 is back, by a later run
// that has nothing new to expire. They were only logged, then forgotten.
func TestExpireAfterS3Outage(t *testing.T) {
	r := newRig(t, time.Hour)
	ctx := context.Background()
	done := r.jobsWith(t, 20, mixed)
	before := r.objects(t)
	r.back.MinIO.Stop(5 * time.Second)
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	n, err := r.up.Expire(octx, time.Now().Add(2*time.Hour))
	cancel()
	if err != nil || n != len(done) {
		t.Fatalf("expire with S3 down: %d, %v; want all %d expired", n, err, len(done))
	}
	r.expectExpired(t, done)
	if d := r.doomed(t); len(d) < len(before) {
		t.Fatalf("%d objects noted for deletion, want at least the %d stored", len(d), len(before))
	}
	m, err := fleettest.RestartMinIO(r.back.MinIO)
	if err != nil {
		t.Fatal(err)
	}
	r.back.MinIO = m
	if objs := r.objects(t); len(objs) != len(before) {
		t.Fatalf("%d objects after the outage, want the %d from before", len(objs), len(before))
	}
	if n, err := r.up.Expire(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("expire after the outage: %d, %v; want nothing new", n, err)
	}
	if objs := r.objects(t); len(objs) != 0 {
		t.Fatalf("objects of expired jobs left after S3 came back: %v", objs)
	}
	if d := r.doomed(t); len(d) != 0 {
		t.Fatalf("%d objects still noted for deletion", len(d))
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
