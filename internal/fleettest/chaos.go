package fleettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inferq/inferq/client"
)

// LoadOptions shape the steady load of a chaos test. The fault itself is
// the caller's: the load only submits, records and, after recovery,
// counts.
type LoadOptions struct {
	// Tenant submits the load (default: the fleet's acme).
	Tenant string
	// InlineBytes and S3Bytes are the two input sizes single jobs
	// alternate between: one that rides in its queue message and one over
	// the fleet's INFERQ_INLINE_INPUT_BYTES, stored in S3 (defaults: 200
	// bytes and 20 KiB, either side of the default 16 KiB limit).
	InlineBytes, S3Bytes int
	// Every is the pause between two single submissions (default 40 ms).
	Every time.Duration
	// BatchFiles is the size of each batch (default 8); a batch is
	// submitted at the start and then every BatchEvery (default 2 s), so
	// at least one is in flight whenever the fault strikes.
	BatchFiles int
	BatchEvery time.Duration
	// Quiet is how long Settle keeps listening after the last expected
	// webhook, for duplicates (default 2 s).
	Quiet time.Duration
}

func (o *LoadOptions) defaults() {
	if o.Tenant == "" {
		o.Tenant = "acme"
	}
	if o.InlineBytes == 0 {
		o.InlineBytes = 200
	}
	if o.S3Bytes == 0 {
		o.S3Bytes = 20 << 10
	}
	if o.Every == 0 {
		o.Every = 40 * time.Millisecond
	}
	if o.BatchFiles == 0 {
		o.BatchFiles = 8
	}
	if o.BatchEvery == 0 {
		o.BatchEvery = 2 * time.Second
	}
	if o.Quiet == 0 {
		o.Quiet = 2 * time.Second
	}
}

// echoWant is what the echo model must answer for one input.
type echoWant struct {
	Bytes  int
	SHA256 string
}

func wantOf(in []byte) echoWant {
	s := sha256.Sum256(in)
	return echoWant{len(in), hex.EncodeToString(s[:])}
}

// Load is a steady stream of echo jobs against a fleet: single jobs
// (inline and S3-sized, each with a webhook) and batches (with per-job
// webhooks and batch.completed). It records every 202 with the result the
// job must end with, and every refusal.
type Load struct {
	t      testing.TB
	opts   LoadOptions
	c      *client.Client
	secret string
	rv     *Receiver
	nc     *nats.Conn
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	singles   map[string]echoWant            // job id -> expected result
	batches   map[string]map[string]echoWant // batch id -> file name -> expected
	refused   map[int]int                    // HTTP status -> count
	errs      []string                       // submissions that got no answer
	endEvents map[string]int                 // job id -> terminal events seen
	stopOnce  sync.Once
}

// StartLoad starts the load against f; it runs until Stop or Settle. The
// fleet must serve the echo model and allow webhooks to loopback (the
// harness's fleets do).
func StartLoad(t testing.TB, f *Fleet, opts LoadOptions) *Load {
	t.Helper()
	opts.defaults()
	ten, ok := f.Tenants[opts.Tenant]
	if !ok {
		t.Fatalf("load: the fleet has no tenant %q", opts.Tenant)
	}
	l := &Load{
		t: t, opts: opts, c: client.New(f.URL, ten.Key), secret: ten.WebhookSecret,
		rv:      NewReceiver(nil),
		singles: map[string]echoWant{}, batches: map[string]map[string]echoWant{},
		refused: map[int]int{}, endEvents: map[string]int{},
	}
	t.Cleanup(l.rv.Close)
	// Terminal events are a second witness of "ended twice", beside the
	// webhooks. They are core NATS, so a node's loss may drop some: they
	// can only undercount, never invent a double.
	nc, err := nats.Connect(f.opts.Backing.NATSURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	l.nc = nc
	t.Cleanup(nc.Close)
	// The subjects of queue.EventSubject, whose package fleettest may not
	// import (jobs' tests import fleettest); an event has the id and status
	// of a job.
	if _, err := nc.Subscribe("jobs.events.>", func(m *nats.Msg) {
		var ev client.Job
		if json.Unmarshal(m.Data, &ev) == nil && ev.Terminal() {
			l.mu.Lock()
			l.endEvents[ev.ID]++
			l.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("load: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Add(2)
	go l.singlesLoop(ctx)
	go l.batchLoop(ctx)
	t.Cleanup(l.Stop)
	return l
}

// input is n bytes unique to seq, so that every job has its own checksum.
func input(n int, seq int) []byte {
	b := make([]byte, n)
	copy(b, fmt.Sprintf("load-%08d-", seq))
	for i := 16; i < n; i++ {
		b[i] = byte(i*31 + seq*7)
	}
	return b
}

func (l *Load) singlesLoop(ctx context.Context) {
	defer l.wg.Done()
	for seq := 0; ; seq++ {
		n := l.opts.InlineBytes
		if seq%2 == 1 {
			n = l.opts.S3Bytes
		}
		in := input(n, seq)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		j, err := l.c.Submit(rctx, client.Submit{Model: "echo", Input: bytes.NewReader(in), FileName: "in.bin",
			ContentType: "application/octet-stream", WebhookURL: l.rv.URL + "/job"})
		cancel()
		if ctx.Err() != nil {
			return // an answer cut short by Stop says nothing of the fleet
		}
		l.record(err, func() { l.singles[j.ID] = wantOf(in) })
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.opts.Every):
		}
	}
}

func (l *Load) batchLoop(ctx context.Context) {
	defer l.wg.Done()
	for seq := 0; ; seq++ {
		want := map[string]echoWant{}
		var files []client.File
		for i := range l.opts.BatchFiles {
			n := l.opts.InlineBytes
			if i%2 == 1 {
				n = l.opts.S3Bytes
			}
			in := input(n, 1_000_000+seq*1000+i)
			name := fmt.Sprintf("f%03d.bin", i)
			want[name] = wantOf(in)
			files = append(files, client.File{Name: name, ContentType: "application/octet-stream", Reader: bytes.NewReader(in)})
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := l.c.SubmitBatch(rctx, client.BatchSubmit{Model: "echo", Files: files, WebhookURL: l.rv.URL + "/batch", JobWebhooks: true})
		cancel()
		if ctx.Err() != nil {
			return
		}
		l.record(err, func() {
			for _, r := range b.Refused {
				delete(want, r.FileName)
			}
			l.batches[b.ID] = want
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.opts.BatchEvery):
		}
	}
}

// record files one submission's answer: accepted (ok runs under the
// lock), refused with an HTTP status, or no answer at all.
func (l *Load) record(err error, ok func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ae *client.Error
	switch {
	case err == nil:
		ok()
	case errors.As(err, &ae):
		l.refused[ae.Status]++
	default:
		l.errs = append(l.errs, err.Error())
	}
}

// Accepted is how many jobs were answered 202 so far (batch members
// included).
func (l *Load) Accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.singles)
	for _, b := range l.batches {
		n += len(b)
	}
	return n
}

// Stop ends the submissions and waits for the ones in flight.
func (l *Load) Stop() {
	l.stopOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
}

// Counts is what a load's jobs came to.
type Counts struct {
	// Accepted jobs (202), singles and batch members; Batches accepted.
	Accepted, Batches int
	// Refused submissions by HTTP status (503 while a part is down is
	// allowed); NoAnswer submissions that got no HTTP answer at all.
	Refused  map[int]int
	NoAnswer int
	// Succeeded with the right result.
	Succeeded int
	// Lost: accepted jobs that never ended, ended other than succeeded,
	// or with a wrong result; a batch that never completed counts its
	// unfinished jobs here.
	Lost int
	// Doubled: jobs with more than one job.* webhook message (distinct
	// webhook-ids) or more than one terminal event, and batches with more
	// than one batch.completed message.
	Doubled int
	// Redelivered counts deliveries of a message already received (the
	// same webhook-id again): at-least-once delivery, which the Standard
	// Webhooks receiver dedupes by webhook-id. A Redis failover can cause
	// it (asynq's record of a delivery lost with the old primary).
	Redelivered int
	// Unwebhooked: ended jobs (and completed batches) whose webhook never
	// came.
	Unwebhooked int
	// Problems names the first few jobs behind the bad counts.
	Problems []string
}

// Err is nil when every accepted job ended once, right, with one webhook.
func (c Counts) Err() error {
	if c.Lost+c.Doubled+c.Unwebhooked == 0 && c.Accepted > 0 {
		return nil
	}
	return fmt.Errorf("load: %s", c)
}

func (c Counts) String() string {
	var ref []string
	codes := make([]int, 0, len(c.Refused))
	for s := range c.Refused {
		codes = append(codes, s)
	}
	sort.Ints(codes)
	for _, s := range codes {
		ref = append(ref, fmt.Sprintf("%d×%d", c.Refused[s], s))
	}
	return fmt.Sprintf("accepted=%d (batches=%d) succeeded=%d lost=%d doubled=%d unwebhooked=%d redelivered=%d refused=[%s] no_answer=%d",
		c.Accepted, c.Batches, c.Succeeded, c.Lost, c.Doubled, c.Unwebhooked, c.Redelivered, strings.Join(ref, " "), c.NoAnswer)
}

// Log writes the counts, and the problems, to the test's log.
func (c Counts) Log(t testing.TB) {
	t.Helper()
	t.Logf("chaos counts: %s", c)
	for _, p := range c.Problems {
		t.Logf("  %s", p)
	}
}

func (c *Counts) problem(format string, args ...any) {
	if len(c.Problems) < 20 {
		c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
	}
}

// Settle stops the load (if still running), waits until every accepted
// job has ended and its webhook has come (or ctx ends), listens Quiet
// longer for duplicates, and counts.
func (l *Load) Settle(ctx context.Context) Counts {
	l.Stop()
	l.mu.Lock()
	singles := make(map[string]echoWant, len(l.singles))
	for id, w := range l.singles {
		singles[id] = w
	}
	batches := make(map[string]map[string]echoWant, len(l.batches))
	for id, b := range l.batches {
		batches[id] = b
	}
	c := Counts{Refused: map[int]int{}, NoAnswer: len(l.errs), Batches: len(l.batches)}
	for s, n := range l.refused {
		c.Refused[s] = n
	}
	l.mu.Unlock()

	// want: every job that must end, with its expected result.
	want := map[string]echoWant{}
	check := func(j *client.Job, w echoWant) {
		var r struct {
			Bytes  int    `json:"bytes"`
			SHA256 string `json:"sha256"`
		}
		if j.Status != "succeeded" || json.Unmarshal(j.Result, &r) != nil || r.Bytes != w.Bytes || r.SHA256 != w.SHA256 {
			c.Lost++
			c.problem("job %s: ended %s (error %+v) with %s, want %d bytes sha256 %s", j.ID, j.Status, j.Error, j.Result, w.Bytes, w.SHA256)
			return
		}
		c.Succeeded++
	}
	for id, w := range singles {
		c.Accepted++
		want[id] = w
		j, err := l.c.Wait(ctx, id)
		if err != nil && ctx.Err() != nil {
			// Once ctx has run out on one job, the others still get a
			// look, so that the counts say how many ended, not which job
			// happened to be waited for first.
			gctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if j, err = l.c.Get(gctx, id, 0); err == nil && !j.Terminal() {
				err = fmt.Errorf("still %s when the wait ran out", j.Status)
			}
			cancel()
		}
		if err != nil {
			c.Lost++
			c.problem("job %s: never ended: %v", id, err)
			continue
		}
		check(j, w)
	}
	for id, files := range batches {
		c.Accepted += len(files)
		if _, err := l.c.WaitBatch(ctx, id, 100*time.Millisecond, nil); err != nil {
			c.Lost += len(files)
			c.problem("batch %s: never completed: %v", id, err)
			continue
		}
		res, err := l.c.BatchResults(ctx, id, "")
		if err != nil {
			c.Lost += len(files)
			c.problem("batch %s: results: %v", id, err)
			continue
		}
		seen := map[string]bool{}
		for res.Next() {
			j := res.Job()
			w, ok := files[j.FileName]
			if !ok || seen[j.FileName] {
				c.Doubled++
				c.problem("batch %s: unexpected or repeated job %s (%s)", id, j.ID, j.FileName)
				continue
			}
			seen[j.FileName] = true
			want[j.ID] = w
			check(j, w)
		}
		if err := res.Err(); err != nil {
			c.problem("batch %s: results: %v", id, err)
		}
		res.Close()
		if missing := len(files) - len(seen); missing > 0 {
			c.Lost += missing
			c.problem("batch %s: %d of its jobs missing from its results", id, missing)
		}
	}

	// Every job's webhook, and every batch's, must come; then Quiet more
	// for duplicates.
	tally := func(got []Received) (jobs, bats map[string]int, redelivered int) {
		jobs, bats = map[string]int{}, map[string]int{}
		seen := map[string]bool{}
		for _, r := range got {
			e, err := client.VerifyWebhook(l.secret, r.Header, r.Body)
			if err != nil {
				continue
			}
			if id := r.Header.Get("webhook-id"); seen[id] {
				redelivered++
				continue
			} else {
				seen[id] = true
			}
			switch e.Type {
			case "batch.completed":
				if b, err := e.Batch(); err == nil {
					bats[b.ID]++
				}
			default:
				if j, err := e.Job(); err == nil {
					jobs[j.ID]++
				}
			}
		}
		return jobs, bats, redelivered
	}
	_ = l.rv.WaitFor(ctx, func(got []Received) bool {
		jobs, bats, _ := tally(got)
		for id := range want {
			if jobs[id] == 0 {
				return false
			}
		}
		for id := range batches {
			if bats[id] == 0 {
				return false
			}
		}
		return true
	})
	select {
	case <-ctx.Done():
	case <-time.After(l.opts.Quiet):
	}
	jobs, bats, redelivered := tally(l.rv.Requests())
	c.Redelivered = redelivered
	l.mu.Lock()
	events := l.endEvents
	for id := range want {
		switch n := jobs[id]; {
		case n == 0:
			c.Unwebhooked++
			c.problem("job %s: no webhook", id)
		case n > 1 || events[id] > 1:
			c.Doubled++
			c.problem("job %s: %d webhooks, %d terminal events", id, n, events[id])
		}
	}
	l.mu.Unlock()
	for id := range batches {
		switch n := bats[id]; {
		case n == 0:
			c.Unwebhooked++
			c.problem("batch %s: no batch.completed", id)
		case n > 1:
			c.Doubled++
			c.problem("batch %s: %d batch.completed", id, n)
		}
	}
	return c
}
