package worker

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models"
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/rollout"
)

// rollouts caches each model's rollout for a refresh interval, so that a
// batch costs no Redis read to be routed.
type rollouts struct {
	mu    sync.Mutex
	state map[string]*rollout.State
	read  map[string]time.Time
}

// defaultRolloutRefresh is how stale a worker's view of a rollout may be.
const defaultRolloutRefresh = 2 * time.Second

// rollout returns the model's rollout as last read (nil: none), rereading
// it when stale; on a reread it also starts the rollout the newest
// version's manifest declares, and unloads the versions that no rollout
// routes to any more.
func (l *modelLoop) rollout(ctx context.Context) *rollout.State {
	w := l.w
	if w.cfg.Rollouts == nil {
		return nil
	}
	rs := &w.rollouts
	rs.mu.Lock()
	st, at := rs.state[l.model], rs.read[l.model]
	rs.mu.Unlock()
	if time.Since(at) < w.cfg.RolloutRefresh {
		return st
	}
	st, err := l.readRollout(ctx)
	if err != nil {
		w.log.Warn("read rollout", "model", l.model, "err", err)
	}
	rs.mu.Lock()
	if rs.state == nil {
		rs.state, rs.read = map[string]*rollout.State{}, map[string]time.Time{}
	}
	if err == nil {
		rs.state[l.model] = st
	}
	rs.read[l.model] = time.Now()
	st = rs.state[l.model]
	rs.mu.Unlock()
	return st
}

func (l *modelLoop) readRollout(ctx context.Context) (*rollout.State, error) {
	w := l.w
	m, release, err := w.cfg.Registry.Acquire(l.model)
	if err != nil {
		return nil, err
	}
	man := m.Manifest
	release()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := w.cfg.Rollouts.Get(ctx, l.model)
	if err != nil {
		return nil, err
	}
	if man.Rollout != nil && (st == nil || (st.To != man.Version && st.From != man.Version)) {
		// Every worker that loads the version tries; the store starts it once.
		from, err := catalog.Previous(w.cfg.Registry.Dir(), l.model, man.Version)
		if err != nil || from == "" {
			return st, err
		}
		spec := rollout.SpecFrom(man.Rollout)
		next, err := spec.Parse(l.model, from, man.Version, time.Now())
		if err != nil {
			w.log.Error("manifest declares a rollout that cannot run; serving the new version to everyone", "model", l.model, "version", man.Version, "err", err)
			return st, nil
		}
		started, err := w.cfg.Rollouts.Start(ctx, next)
		if err != nil && !errors.Is(err, rollout.ErrBusy) {
			return st, err
		}
		if started {
			w.log.Info("rollout started", "model", l.model, "from", from, "to", man.Version, "canary", next.Canary, "shadow", next.Shadow, "window", next.Window)
		}
		if st, err = w.cfg.Rollouts.Get(ctx, l.model); err != nil {
			return nil, err
		}
	}
	if st == nil || st.Status != rollout.Running {
		// Keep loaded only the version that jobs still run on besides the
		// newest (the old one after a rollback).
		w.cfg.Registry.Retain(l.model, st.Version("", man.Version))
	}
	return st, nil
}

// group is the messages of a batch that run on one version.
type group struct {
	version string
	msgs    []jetstream.Msg
}

// route splits a batch by the version each job runs on: one group with
// the newest version ("") when no rollout runs.
func (l *modelLoop) route(ctx context.Context, msgs []jetstream.Msg) []group {
	st := l.rollout(ctx)
	current := l.w.cfg.Registry.Versions(l.model)
	if st == nil || st.Status == rollout.Promoted || len(current) == 0 {
		return []group{{msgs: msgs}}
	}
	var out []group
	for _, msg := range msgs {
		var id struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(msg.Data(), &id) // an unreadable message is dropped by prepare
		v := st.Version(id.ID, current[0])
		i := 0
		for i < len(out) && out[i].version != v {
			i++
		}
		if i == len(out) {
			out = append(out, group{version: v})
		}
		out[i].msgs = append(out[i].msgs, msg)
	}
	return out
}

// acquire holds the version a group runs on; a version a rollout names
// that cannot be loaded (its directory was removed) falls back to the
// newest, so that no job is lost to a missing version.
func (l *modelLoop) acquire(version string) (*models.Model, func(), error) {
	if version != "" {
		m, release, err := l.w.cfg.Registry.AcquireVersion(l.model, version)
		if err == nil {
			return m, release, nil
		}
		l.w.log.Error("rollout version cannot be loaded, running the newest", "model", l.model, "version", version, "err", err)
	}
	return l.w.cfg.Registry.Acquire(l.model)
}

// judged counts a finished batch for the running rollout and hands the
// jobs of its shadow sample to compareShadows. It runs after the batch's
// results are durable and acked, so a shadow run never touches a job's
// result or its deadline.
func (l *modelLoop) judged(ctx context.Context, m *models.Model, ran []*item, took time.Duration) {
	st := l.rollout(ctx)
	if st == nil || st.Status != rollout.Running || len(ran) == 0 {
		return
	}
	version := m.Manifest.Version
	if version != st.From && version != st.To {
		return
	}
	now := time.Now()
	var c rollout.Counters
	var shadow []*item
	for _, it := range ran {
		c.Jobs++
		if it.out.Err != nil || it.rescued {
			c.Failed++
		} else {
			c.RunMicros += took.Microseconds() / int64(len(ran))
		}
		if !now.After(it.job.Deadline) {
			c.Met++
		}
		if it.sample != nil && !it.rescued && st.Shadowed(it.job.ID) {
			shadow = append(shadow, it)
		}
	}
	if len(shadow) > 0 {
		select {
		case l.shadows <- shadowWork{version: version, other: st.Other(version), items: shadow}:
		default:
			// The comparisons are behind: this batch's sample is skipped
			// rather than let them hold the model's batches or memory.
			l.w.shadowCost.skipped.WithLabelValues(l.model).Add(float64(len(shadow)))
		}
	}
	l.count(ctx, version, c)
}

func (l *modelLoop) count(ctx context.Context, version string, c rollout.Counters) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := l.w.cfg.Rollouts.Count(ctx, l.model, version, c); err != nil {
		l.w.log.Warn("count rollout", "model", l.model, "err", err)
	}
}

// shadowWork is a batch's shadow sample: jobs that ran on version, whose
// outputs are to be compared with version other's.
type shadowWork struct {
	version, other string
	items          []*item
}

// shadowBacklog bounds the batches waiting for their shadow comparison.
const shadowBacklog = 4

// compareShadows starts the model's shadow comparisons, off the batches'
// path: an executor hands a batch's sample over once its results are
// durable and acked, and goes on with the next batch. It returns the stop
// to call once no executor runs any more.
func (l *modelLoop) compareShadows(ctx context.Context) (stop func()) {
	l.shadows = make(chan shadowWork, shadowBacklog)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sw := range l.shadows {
			if ctx.Err() != nil {
				continue // stopping: drain without running
			}
			n, agree := l.shadow(sw.other, sw.items)
			l.count(ctx, sw.version, rollout.Counters{Shadow: n, Agree: agree})
		}
	}()
	return func() { close(l.shadows); <-done }
}

// shadow runs items on version other and counts how many outputs agree.
func (l *modelLoop) shadow(other string, items []*item) (n, agree int64) {
	start := time.Now()
	o, release, err := l.w.cfg.Registry.AcquireVersion(l.model, other)
	if err != nil {
		l.w.log.Warn("shadow version cannot be loaded", "model", l.model, "version", other, "err", err)
		return 0, 0
	}
	defer release()
	samples := make([]models.Sample, len(items))
	for i, it := range items {
		samples[i] = it.sample
	}
	outs, err := o.Run(samples)
	for i, it := range items {
		failed := err != nil || outs[i].Err != nil
		var res json.RawMessage
		if !failed {
			res = outs[i].Result
		}
		n++
		if rollout.Agree(it.out.Result, res, it.out.Err != nil, failed) {
			agree++
		}
	}
	l.w.shadowCost.observe(l.model, len(items), time.Since(start))
	return n, agree
}

// shadowCost is what shadow comparison costs a worker: the jobs it ran a
// second time and the seconds those runs and comparisons took.
type shadowCost struct {
	jobs    *prometheus.CounterVec
	seconds *prometheus.CounterVec
	skipped *prometheus.CounterVec
}

func newShadowCost(reg prometheus.Registerer) *shadowCost {
	c := &shadowCost{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferq_rollout_shadow_jobs_total",
			Help: "Jobs run a second time on the other version of a rollout for comparison, by model."}, []string{"model"}),
		seconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferq_rollout_shadow_seconds_total",
			Help: "Seconds spent running and comparing shadow jobs, by model; over the shadow jobs, the cost of one comparison."}, []string{"model"}),
	}
	c.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferq_rollout_shadow_skipped_total",
		Help: "Jobs of a rollout's shadow sample not compared because the comparisons were behind, by model."}, []string{"model"})
	reg.MustRegister(c.jobs, c.seconds, c.skipped)
	return c
}

func (c *shadowCost) observe(model string, n int, d time.Duration) {
	c.jobs.WithLabelValues(model).Add(float64(n))
	c.seconds.WithLabelValues(model).Add(d.Seconds())
}

// keepForRescue keeps the inputs of a batch on a running rollout's new
// version (the canary share of one batch at most), so that rescue can
// decode them for the old one.
func (l *modelLoop) keepForRescue(ctx context.Context, m *models.Model, items []*item) {
	st := l.rollout(ctx)
	if st == nil || st.Status != rollout.Running || m.Manifest.Version != st.To {
		return
	}
	for _, it := range items {
		it.raw = it.input
	}
}

// rescue runs again on the old version the jobs whose run failed on a
// rollout's new version: the failure still counts against the new
// version, but the job gets the answer the fleet gave before the rollout,
// so a broken canary costs its jobs time, not their results. A job whose
// input is at fault fails on the old version too, as it would have.
func (l *modelLoop) rescue(ctx context.Context, m *models.Model, ran []*item) {
	var failed []*item
	for _, it := range ran {
		var je *jobs.Error
		if it.raw != nil && it.out.Err != nil && errors.As(it.out.Err, &je) && je.Code == "inference_failed" {
			failed = append(failed, it)
		}
	}
	st := l.rollout(ctx)
	if len(failed) == 0 || st == nil || m.Manifest.Version != st.To {
		return
	}
	old, release, err := l.w.cfg.Registry.AcquireVersion(l.model, st.From)
	if err != nil {
		l.w.log.Warn("cannot rescue canary failures on the old version", "model", l.model, "version", st.From, "err", err)
		return
	}
	defer release()
	for _, it := range failed {
		it.input, it.raw, it.out, it.sample = it.raw, nil, models.Outcome{}, nil
		it.rescued, it.version = true, st.From
	}
	l.decode(old, failed)
	var runnable []*item
	for _, it := range failed {
		if it.out.Err == nil {
			runnable = append(runnable, it)
		}
	}
	if len(runnable) > 0 {
		l.w.runSplit(old, runnable)
	}
	l.w.log.Info("canary failures answered by the old version", "model", l.model, "from", st.From, "to", st.To, "jobs", len(failed))
}
