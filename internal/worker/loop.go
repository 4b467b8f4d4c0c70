package worker

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models"
	"github.com/inferq/inferq/internal/queue"
)

// modelLoop pulls and runs the jobs of one model.
type modelLoop struct {
	w     *Worker
	model string
	cons  jetstream.Consumer
	// service and arrivals feed the batcher and the heartbeats.
	service  ServiceTimes
	arrivals RateMeter
	// idle counts the executors waiting for a batch.
	idle atomic.Int32
	// shadows feeds the shadow comparisons of a rollout (rollout.go).
	shadows chan shadowWork
	// checked is when the loop last made sure its consumer exists.
	checked time.Time
	// busyNS is inference time since the last heartbeat (its busy share).
	busyNS atomic.Int64
}

// consumerCheckEvery spaces the checks that a loop's consumer exists:
// each is one JetStream API request per idle model and worker.
const consumerCheckEvery = 10 * time.Second

// ensureConsumer recreates the model's run consumer when it is gone: on a
// NATS cluster a meta-leader election can leave a consumer deleted, and a
// fetch from a deleted consumer only ever gets nothing
// (TestRunConsumerDeletedUnderWorker). Called after a fetch that brought
// nothing or failed; it asks at most every consumerCheckEvery, briefly.
func (l *modelLoop) ensureConsumer(ctx context.Context) {
	if time.Since(l.checked) < consumerCheckEvery || ctx.Err() != nil {
		return
	}
	l.checked = time.Now()
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := l.cons.Info(ictx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return
	}
	cons, err := queue.EnsureRunConsumer(ictx, l.w.cfg.JS, l.model, l.w.cfg.AckWait, l.w.cfg.MaxDeliver)
	if err != nil {
		l.w.log.Warn("recreate run consumer", "model", l.model, "err", err)
		return
	}
	l.w.log.Warn("run consumer vanished, recreated it", "model", l.model)
	l.cons = cons
}

// defaultMaxWait caps a partial batch's wait when the manifest sets none.
const defaultMaxWait = 5 * time.Millisecond

// limits are the batch size and wait cap of the model's current version.
func (l *modelLoop) limits() (int, time.Duration, error) {
	m, release, err := l.w.cfg.Registry.Acquire(l.model)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	maxBatch, maxWait := m.Manifest.MaxBatch, time.Duration(m.Manifest.MaxWaitMS)*time.Millisecond
	if c := l.w.cfg.MaxBatch; c > 0 && c < maxBatch {
		maxBatch = c
	}
	if maxWait == 0 {
		maxWait = defaultMaxWait
	}
	return maxBatch, maxWait, nil
}

// batch is a set of jobs prepared for one run of one model version.
type batch struct {
	items   []*item
	model   *models.Model
	release func()
	stopHB  func()
	fetched time.Time
}

// run is a two-stage pipeline: this goroutine takes and prepares the next
// batch (fetching inputs from S3, decoding them) while up to Instances
// batches run their inference.
func (l *modelLoop) run(fetch, work context.Context) {
	defer l.compareShadows(work)()
	ready := make(chan *batch)
	var wg sync.WaitGroup
	for i := 0; i < l.w.cfg.Instances; i++ {
		wg.Add(1)
		l.idle.Add(1)
		go func() {
			defer wg.Done()
			for b := range ready {
				l.idle.Add(-1)
				l.execute(work, b)
				l.idle.Add(1)
			}
		}()
	}
	defer func() {
		close(ready)
		wg.Wait()
	}()
	for fetch.Err() == nil {
		msgs, err := l.take(fetch)
		if err != nil || len(msgs) == 0 {
			l.ensureConsumer(fetch)
		}
		if err != nil {
			l.w.cfg.Ops.SetNote("nats", err.Error())
			l.w.log.Warn("fetch jobs", "model", l.model, "err", err)
			if len(msgs) == 0 {
				sleepCtx(fetch, time.Second)
				continue
			}
		} else {
			l.w.cfg.Ops.SetNote("nats", "")
		}
		if len(msgs) == 0 {
			continue
		}
		for _, g := range l.route(fetch, msgs) {
			b := l.prepare(work, g.msgs, g.version)
			if b == nil {
				continue
			}
			select {
			case ready <- b:
			case <-work.Done():
				b.stopHB()
				b.release()
				return
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// take pulls the next batch in step with what this worker can start: it
// blocks for the first job, takes what is already waiting up to the batch
// size, then lets the batcher decide how long to wait for more (deadlines,
// the wait cap, the measured service time and the arrival rate decide).
// Jobs not taken stay in the queue, where the scheduler can still reorder
// them.
func (l *modelLoop) take(ctx context.Context) ([]jetstream.Msg, error) {
	maxBatch, maxWait, err := l.limits()
	if err != nil {
		return nil, err
	}
	return l.fetchBatch(ctx, maxBatch, maxWait)
}

// fetchBatch is take's pulling, for a batch of at most maxBatch jobs
// waiting at most maxWait for more.
func (l *modelLoop) fetchBatch(ctx context.Context, maxBatch int, maxWait time.Duration) ([]jetstream.Msg, error) {
	msgs, err := collect(l.cons.FetchNoWait(maxBatch))
	if err != nil {
		return msgs, err
	}
	if len(msgs) == 0 {
		if ctx.Err() != nil {
			return nil, nil
		}
		if msgs, err = collect(l.cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))); err != nil || len(msgs) == 0 {
			return msgs, err
		}
		if maxBatch > 1 {
			// (A fetch of nothing is not free: it waits out its expiry.)
			more, err := collect(l.cons.FetchNoWait(maxBatch - 1))
			if msgs = append(msgs, more...); err != nil {
				return msgs, err
			}
		}
	}
	start := time.Now()
	l.arrivals.Add(start, len(msgs))
	b := Batcher{MaxBatch: maxBatch, MaxWait: maxWait, Service: &l.service, Arrivals: &l.arrivals}
	for len(msgs) < maxBatch {
		wait := b.Wait(time.Now(), start, len(msgs), earliestDeadline(msgs), l.idle.Load() > 0)
		if wait < time.Millisecond {
			break
		}
		more, err := collect(l.cons.Fetch(maxBatch-len(msgs), jetstream.FetchMaxWait(wait)))
		l.arrivals.Add(time.Now(), len(more))
		if msgs = append(msgs, more...); err != nil || len(more) == 0 {
			return msgs, err
		}
	}
	return msgs, nil
}

// earliestDeadline is the earliest deadline among the messages' jobs.
func earliestDeadline(msgs []jetstream.Msg) time.Time {
	var earliest time.Time
	for _, m := range msgs {
		var d struct {
			Deadline time.Time `json:"deadline"`
		}
		if json.Unmarshal(m.Data(), &d) == nil && !d.Deadline.IsZero() && (earliest.IsZero() || d.Deadline.Before(earliest)) {
			earliest = d.Deadline
		}
	}
	return earliest
}

func collect(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !isTimeout(err) {
		return out, err
	}
	return out, nil
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoHeartbeat) || err.Error() == "nats: timeout"
}

// prepare reads the records and inputs of a batch and decodes them for
// version (a rollout's choice; "": the newest). It returns nil when
// nothing in the batch is left to run.
func (l *modelLoop) prepare(ctx context.Context, msgs []jetstream.Msg, version string) *batch {
	w := l.w
	items := make([]*item, 0, len(msgs))
	for _, msg := range msgs {
		m, err := jobs.DecodeMessage(msg.Data())
		if err != nil {
			w.log.Error("dropping unreadable run message", "model", l.model, "err", err)
			_ = msg.Term()
			continue
		}
		items = append(items, &item{msg: msg, job: m})
	}
	if len(items) == 0 {
		return nil
	}
	b := &batch{items: items, fetched: time.Now()}
	b.stopHB = w.heartbeat(ctx, items)
	abandon := func() *batch {
		// A fault outlasted the hold limit or the worker is stopping:
		// hand the jobs back without spending a delivery on them.
		b.stopHB()
		for _, it := range items {
			if !it.done {
				_ = it.msg.NakWithDelay(5 * time.Second)
			}
		}
		return nil
	}
	if err := w.retry(ctx, "s3", func() error { return l.fetchInputs(ctx, items) }); err != nil {
		return abandon()
	}
	m, release, err := l.acquire(version)
	if err != nil {
		w.log.Error("model gone", "model", l.model, "err", err)
		return abandon()
	}
	b.model, b.release = m, release
	l.fanOut(ctx, m, items)
	l.keepForRescue(ctx, m, items)
	l.decode(m, items)
	return b
}

// fetchInputs reads the inputs not yet read from S3, in parallel; an
// inline input is in its message already. The message, not the record,
// says where the input is: the worker reads no record before it runs a
// job (markRunning's transition sets aside the jobs that need no run).
func (l *modelLoop) fetchInputs(ctx context.Context, items []*item) error {
	w := l.w
	sem := make(chan struct{}, w.cfg.FetchParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fault error
	// The pages of one document share its input: one GET serves them all,
	// and the pages after them (keptInput).
	byKey := map[string][]*item{}
	var keys []string
	for _, it := range items {
		if it.done || it.input != nil || it.out.Err != nil {
			continue
		}
		if it.job.Input != nil {
			it.input = it.job.Input
			continue
		}
		if byKey[it.job.InputKey] == nil {
			keys = append(keys, it.job.InputKey)
		}
		byKey[it.job.InputKey] = append(byKey[it.job.InputKey], it)
	}
	for _, key := range keys {
		if data := w.kept.get(key); data != nil {
			for _, it := range byKey[key] {
				it.input = data
			}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			data, err := w.cfg.Blob.Get(ctx, key, w.cfg.MaxInputBytes)
			if err == nil && keeps(byKey[key][0].job) {
				w.kept.keep(key, data)
			}
			for _, it := range byKey[key] {
				switch {
				case errors.Is(err, blob.ErrNotFound) && w.cfg.Blob.Ping(ctx) != nil:
					// An S3 that is going down may say "no such key" while its
					// bucket is not reachable either: a fault, not a missing input.
					mu.Lock()
					fault = transient{err}
					mu.Unlock()
				case errors.Is(err, blob.ErrNotFound):
					w.fail(it, "input_missing", "the job's input is no longer in storage")
				case errors.Is(err, blob.ErrTooLarge):
					// Not a fault of S3: this job's input alone is wrong, and
					// holding the batch for it would hold every job in it.
					w.fail(it, "input_too_large", fmt.Sprintf("the job's input in storage is over %d bytes", w.cfg.MaxInputBytes))
				case err != nil:
					mu.Lock()
					fault = transient{err}
					mu.Unlock()
				default:
					it.input = data
				}
			}
		}()
	}
	wg.Wait()
	return fault
}

// decode prepares each input for the model, in parallel; an input that
// cannot be used fails its own job only.
func (l *modelLoop) decode(m *models.Model, items []*item) {
	sem := make(chan struct{}, l.w.cfg.FetchParallel)
	var wg sync.WaitGroup
	for _, it := range items {
		if it.done || it.out.Err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s, err := m.Prepare(models.Input{Data: it.input, ContentType: it.job.ContentType})
			it.input, it.job.Input = nil, nil
			if err != nil {
				var ie *models.InputError
				if errors.As(err, &ie) {
					l.w.fail(it, ie.Code, ie.Message)
				} else {
					l.w.fail(it, "invalid_input", err.Error())
				}
				return
			}
			it.sample = s
		}()
	}
	wg.Wait()
}

// execute marks the batch running, runs it, records the outcomes, and acks.
func (l *modelLoop) execute(ctx context.Context, b *batch) {
	w := l.w
	defer b.release()
	defer b.stopHB()
	version := b.model.Manifest.Version
	if err := w.retry(ctx, "redis", func() error { return l.markRunning(ctx, b.items, version) }); err != nil {
		l.handBack(b.items)
		return
	}
	var runnable []*item
	for _, it := range b.items {
		if !it.done && it.out.Err == nil {
			runnable = append(runnable, it)
		}
	}
	var took time.Duration
	if len(runnable) > 0 {
		start := time.Now()
		w.runSplit(b.model, runnable)
		took = time.Since(start)
		l.service.Observe(len(runnable), took)
		l.busyNS.Add(int64(took))
		w.m.observeBatch(l.model, len(runnable), took)
		l.rescue(ctx, b.model, runnable)
	}
	if err := w.retry(ctx, "s3", func() error { return l.storeLarge(ctx, b.items) }); err != nil {
		l.handBack(b.items)
		return
	}
	if err := w.retry(ctx, "redis", func() error { return l.finish(ctx, b.items, version) }); err != nil {
		l.handBack(b.items)
		return
	}
	l.judged(ctx, b.model, runnable, took)
}

func (l *modelLoop) handBack(items []*item) {
	for _, it := range items {
		if !it.done {
			_ = it.msg.NakWithDelay(5 * time.Second)
		}
	}
}

// markRunning moves the jobs of the batch to running, counting the
// attempt, in one round trip; a job canceled meanwhile is set aside.
func (l *modelLoop) markRunning(ctx context.Context, items []*item, version string) error {
	now := time.Now()
	var todo []*item
	var moves []jobs.Move
	for _, it := range items {
		if it.done || it.out.Err != nil || it.running {
			continue
		}
		todo = append(todo, it)
		moves = append(moves, jobs.Move{ID: it.job.ID, Tenant: it.job.Tenant, To: jobs.Running,
			Update: jobs.Update{StartedAt: now, ModelVersion: version, CountAttempt: true}})
	}
	if len(moves) == 0 {
		return nil
	}
	var fault error
	for i, res := range l.w.cfg.Store.TransitionMany(ctx, moves) {
		it := todo[i]
		var te *jobs.TransitionError
		switch {
		case errors.As(res.Err, &te) && te.From == jobs.Queued:
			// The scheduler marks a job scheduled before it publishes it,
			// so this is a record behind its message: try again later
			// rather than lose the job.
			it.done = true
			_ = it.msg.NakWithDelay(time.Second)
		case errors.As(res.Err, &te), errors.Is(res.Err, jobs.ErrNotFound):
			it.done = true
			_ = it.msg.Ack()
		case res.Err != nil:
			fault = transient{res.Err}
		default:
			it.running = true
			l.w.m.queueWait.WithLabelValues(l.model).Observe(now.Sub(it.job.CreatedAt).Seconds())
			queue.PublishEvent(l.w.cfg.NATS, it.job.Tenant, it.job.ID, jobs.Running, now)
		}
	}
	return fault
}

// runSplit runs the items in one session run; when the run fails it
// splits the batch in halves until the input at fault is alone, and fails
// only that one.
func (w *Worker) runSplit(m *models.Model, items []*item) {
	samples := make([]models.Sample, len(items))
	for i, it := range items {
		samples[i] = it.sample
	}
	outs, err := m.Run(samples)
	if err == nil {
		for i, it := range items {
			it.out = outs[i]
		}
		return
	}
	if len(items) == 1 {
		w.log.Warn("inference failed", "job", items[0].job.ID, "model", m.Manifest.Name, "err", err)
		w.fail(items[0], "inference_failed", err.Error())
		return
	}
	half := len(items) / 2
	w.runSplit(m, items[:half])
	w.runSplit(m, items[half:])
}

// finish records the outcomes of the batch in one round trip, then acks
// each message whose outcome is durable.
func (l *modelLoop) finish(ctx context.Context, items []*item, version string) error {
	w := l.w
	now := time.Now()
	var todo []*item
	var moves []jobs.Move
	for _, it := range items {
		if it.done {
			continue
		}
		to, u := jobs.Succeeded, jobs.Update{FinishedAt: now, ModelVersion: cmp.Or(it.version, version), Result: it.out.Result}
		if it.out.Err != nil {
			to, u.Result = jobs.Failed, nil
			var je *jobs.Error
			if !errors.As(it.out.Err, &je) {
				je = errorOf("inference_failed", it.out.Err.Error())
			}
			u.Error = je
		} else if u.Result == nil {
			u.Result = json.RawMessage("null")
		}
		todo = append(todo, it)
		moves = append(moves, jobs.Finishing(&jobs.Job{ID: it.job.ID, Tenant: it.job.Tenant, Deadline: it.job.Deadline}, to, u))
	}
	if len(moves) == 0 {
		return nil
	}
	var fault error
	var ended []jobs.Ended
	defer func() {
		w.pagesProgress(ctx, ended)
		w.finished(ctx, ended)
	}()
	for i, res := range w.cfg.Store.TransitionMany(ctx, moves) {
		it, to := todo[i], moves[i].To
		var te *jobs.TransitionError
		switch {
		case errors.As(res.Err, &te), errors.Is(res.Err, jobs.ErrNotFound):
			// Canceled while running, or finished by another worker.
		case res.Err != nil:
			fault = transient{res.Err}
			continue
		default:
			met := !now.After(it.job.Deadline)
			queue.PublishEvent(w.cfg.NATS, it.job.Tenant, it.job.ID, to, now)
			ended = append(ended, jobs.Ended{Message: it.job, State: to, MetDeadline: met})
			w.m.finished(l.model, it.job.Tier, to, met, now.Sub(it.job.CreatedAt))
		}
		it.done = true
		if err := it.msg.Ack(); err != nil {
			w.log.Warn("ack", "job", it.job.ID, "err", err)
		}
	}
	return fault
}

// storeLarge moves results over the inline limit to S3 (outputs/<tenant>/
// <job>/result.json) and leaves in their place where to fetch them.
func (l *modelLoop) storeLarge(ctx context.Context, items []*item) error {
	limit := l.w.cfg.MaxInlineResult
	if limit <= 0 {
		limit = 64 << 10
	}
	for _, it := range items {
		if it.done || it.out.Err != nil || int64(len(it.out.Result)) <= limit {
			continue
		}
		key := blob.ResultKey(it.job.Tenant, it.job.ID)
		if _, err := l.w.cfg.Blob.Put(ctx, key, bytes.NewReader(it.out.Result), int64(len(it.out.Result)), "application/json"); err != nil {
			return transient{err}
		}
		it.out.Result, _ = json.Marshal(map[string]any{
			"stored": true, "bytes": len(it.out.Result), "output_url": "/v1/jobs/" + it.job.ID + "/output",
		})
	}
	return nil
}
