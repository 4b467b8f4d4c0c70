// Package worker runs jobs: per model, it pulls micro-batches from the run
// stream in step with what it can start, fetches and prepares the inputs
// while the previous batch runs, runs each batch in one ONNX Runtime
// session run, records results in Redis, and only then acks. It sorts
// failures: a bad input fails its job at once; a run that fails is split
// to find the input at fault; a fault of S3, Redis or NATS holds the batch
// and retries, heartbeating, without spending the job's deliveries; a job
// that kept killing workers ends failed with max_attempts.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/rollout"
)

// Config is what a worker needs.
type Config struct {
	NATS     *nats.Conn
	JS       jetstream.JetStream
	Store    *jobs.Store
	Blob     *blob.Store
	Registry *models.Registry
	// Loaded names the registry's models as they become servable
	// (models.OpenEach); nil: every model of Registry, from the start.
	Loaded <-chan string
	Ops    *ops.Server
	Log    *slog.Logger
	Device string
	// AckWait and MaxDeliver configure the run consumers.
	AckWait    time.Duration
	MaxDeliver int
	// MaxInputBytes bounds an input read from S3.
	MaxInputBytes int64
	// MaxInlineResult is the largest result kept in the record; larger
	// ones are stored in S3 (0: 64 KiB).
	MaxInlineResult int64
	// Instances is how many batches of one model may run at once.
	Instances int
	// MaxBatch caps batches below the manifests' max_batch (0: no cap).
	MaxBatch int
	// JSReplicas is the replica count of the KV buckets it may create.
	JSReplicas int
	// FetchParallel bounds concurrent input fetches and decodes.
	FetchParallel int
	// HoldLimit bounds how long a batch is held through a transient fault
	// before its jobs are handed back to the queue.
	HoldLimit time.Duration
	// OnFinish, when set, is told of the jobs this worker moved to a
	// terminal state, once each, after their states are durable, a batch
	// at a time (webhooks and batch completion hang here).
	OnFinish func(ctx context.Context, ended []jobs.Ended)
	// Rollouts, when set, routes each model's jobs by its rollout and
	// counts them for the judge (nil: the newest version serves all).
	Rollouts *rollout.Store
	// RolloutRefresh is how often a model's rollout is reread (0: 2 s).
	RolloutRefresh time.Duration
}

func (w *Worker) finished(ctx context.Context, ended []jobs.Ended) {
	if w.cfg.OnFinish != nil && len(ended) > 0 {
		w.cfg.OnFinish(ctx, ended)
	}
}

// Worker serves the models of its registry.
type Worker struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	// rollouts and shadowCost serve model rollouts (rollout.go).
	rollouts   rollouts
	shadowCost *shadowCost
	// kept holds the inputs of the documents whose pages were fetched
	// last (keptinput.go).
	kept keptInput
}

// New builds a worker.
func New(cfg Config) *Worker {
	if cfg.FetchParallel <= 0 {
		cfg.FetchParallel = 8
	}
	if cfg.Instances <= 0 {
		cfg.Instances = 1
	}
	if cfg.HoldLimit <= 0 {
		cfg.HoldLimit = 5 * time.Minute
	}
	if cfg.RolloutRefresh <= 0 {
		cfg.RolloutRefresh = defaultRolloutRefresh
	}
	w := &Worker{cfg: cfg, log: cfg.Log}
	w.m = newMetrics(cfg.Ops.Registry, cfg.Device)
	w.shadowCost = newShadowCost(cfg.Ops.Registry)
	return w
}

// Run serves until fetch ends: then it withdraws its heartbeat, stops
// taking jobs, finishes the batches in hand and returns. work bounds that
// finishing: when it ends, batches still in hand are abandoned to
// redelivery.
func (w *Worker) Run(fetch, work context.Context) error {
	// NATS may be down while the worker starts: keep trying, and say so on
	// /readyz, rather than exit (a worker that exited here left its jobs
	// unserved after NATS came back: TestNATSDown).
	var kv *coord.Buckets
	for {
		var err error
		if kv, err = w.setup(fetch, work); err == nil {
			break
		}
		w.cfg.Ops.SetNote("nats", err.Error())
		w.log.Warn("cannot set up the queues yet, retrying", "err", err)
		sleepCtx(fetch, time.Second)
		if fetch.Err() != nil {
			return nil
		}
	}
	w.cfg.Ops.SetNote("nats", "")
	loaded := w.cfg.Loaded
	if loaded == nil {
		names := w.cfg.Registry.Names()
		ch := make(chan string, len(names))
		for _, n := range names {
			ch <- n
		}
		close(ch)
		loaded = ch
	}
	// Each model is served from the moment it is loaded: a small model
	// does not wait for a large one (the first job on a fresh fleet did).
	loops := &loopSet{added: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.heartbeats(fetch, kv.Workers, loops)
	}()
	for {
		var name string
		var ok bool
		select {
		case <-fetch.Done():
			return nil
		case name, ok = <-loaded:
		}
		if !ok {
			return nil
		}
		l, err := w.serve(fetch, name)
		if err != nil {
			return nil // fetch ended
		}
		loops.add(l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(fetch, work)
		}()
	}
}

// serve makes the run consumer of model, retrying while NATS is down.
func (w *Worker) serve(fetch context.Context, model string) (*modelLoop, error) {
	for {
		ctx, cancel := context.WithTimeout(fetch, 10*time.Second)
		cons, err := queue.EnsureRunConsumer(ctx, w.cfg.JS, model, w.cfg.AckWait, w.cfg.MaxDeliver)
		cancel()
		if err == nil {
			w.cfg.Ops.SetNote("nats", "")
			return &modelLoop{w: w, model: model, cons: cons}, nil
		}
		w.cfg.Ops.SetNote("nats", err.Error())
		w.log.Warn("cannot set up the model's queue yet, retrying", "model", model, "err", err)
		sleepCtx(fetch, time.Second)
		if fetch.Err() != nil {
			return nil, fetch.Err()
		}
	}
}

// item is one job in a batch, from message to outcome.
type item struct {
	msg    jetstream.Msg
	job    jobs.Message
	input  []byte
	sample models.Sample
	out    models.Outcome
	// done is set once the job needs no more work in this batch (skipped,
	// failed early, or finished); running once its record says running.
	done, running bool
	// raw keeps the input of a job on a rollout's new version, for a
	// rescue on the old one; version is the version that answered, when
	// not the batch's (rollout.go).
	raw     []byte
	version string
	rescued bool
}

// transient marks an error of a backing service: the batch is held and
// retried, not failed.
type transient struct{ err error }

func (t transient) Error() string { return t.err.Error() }
func (t transient) Unwrap() error { return t.err }

// retry runs f until it succeeds, fails for good, ctx ends or the hold
// limit passes, backing off and noting the fault on /readyz meanwhile.
func (w *Worker) retry(ctx context.Context, what string, f func() error) error {
	start := time.Now()
	delay := 100 * time.Millisecond
	for {
		err := f()
		var t transient
		if !errors.As(err, &t) {
			if err == nil {
				w.cfg.Ops.SetNote(what, "")
			}
			return err
		}
		w.cfg.Ops.SetNote(what, t.Error())
		w.log.Warn("transient fault, holding the batch", "what", what, "err", t.err, "retry_in", delay)
		if time.Since(start) > w.cfg.HoldLimit {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// heartbeat tells JetStream that the batch is still being worked on, so
// that a long batch is not redelivered while it runs.
func (w *Worker) heartbeat(ctx context.Context, items []*item) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(w.cfg.AckWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, it := range items {
					if !it.done {
						_ = it.msg.InProgress()
					}
				}
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func errorOf(code, msg string) *jobs.Error { return &jobs.Error{Code: code, Message: msg} }

func (w *Worker) fail(it *item, code, msg string) {
	it.out = models.Outcome{Err: errorOf(code, msg)}
}

func isIllegal(err error) bool {
	return errors.Is(err, jobs.ErrIllegal) || errors.Is(err, jobs.ErrNotFound)
}

// setup opens the key-value buckets and starts the handling of
// JetStream's give-ups.
func (w *Worker) setup(fetch, work context.Context) (*coord.Buckets, error) {
	ctx, cancel := context.WithTimeout(fetch, 10*time.Second)
	defer cancel()
	kv, err := coord.Open(ctx, w.cfg.JS, w.cfg.JSReplicas)
	if err != nil {
		return nil, err
	}
	if err := w.watchGiveUps(work); err != nil {
		return nil, err
	}
	return kv, nil
}
