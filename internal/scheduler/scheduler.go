// Package scheduler owns the order in which jobs run. It pulls submitted
// jobs from JOBS, keeps them in per-model queues ordered by a policy, and
// releases them to jobs.run.<model> only while that model's dispatched but
// unfinished jobs are below the dispatch window, so that the order is
// decided when a worker is about to start, not when the job arrived. It
// acks a submitted job only after its run message is stored: a scheduler
// that dies loses nothing, and the next rebuilds its queues from what is
// unacked.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// Config is what the scheduler needs.
type Config struct {
	NATS  *nats.Conn
	JS    jetstream.JetStream
	Store *jobs.Store
	Log   *slog.Logger
	// Window is how many jobs of one model may be dispatched and not yet
	// finished: enough to keep the workers' batches full, few enough that
	// late arrivals can still overtake.
	Window  int
	Metrics prometheus.Registerer
}

// held is a submitted job the scheduler holds unacked.
type held struct {
	msg jetstream.Msg
	job jobs.Message
}

// Scheduler runs the dispatch loop.
type Scheduler struct {
	cfg    Config
	log    *slog.Logger
	queues map[string]*fifo
	m      metrics
}

type metrics struct {
	dispatched *prometheus.CounterVec
	depth      *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
}

// New builds a scheduler.
func New(cfg Config) *Scheduler {
	if cfg.Window <= 0 {
		cfg.Window = 128
	}
	s := &Scheduler{cfg: cfg, log: cfg.Log, queues: map[string]*fifo{}}
	s.m = metrics{
		dispatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferq_scheduler_dispatched_total", Help: "Jobs released to workers, by model and tier.",
		}, []string{"model", "tier"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_queue_depth_jobs", Help: "Jobs held by the scheduler, not yet dispatched, by model and tier.",
		}, []string{"model", "tier"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_queue_oldest_wait_seconds", Help: "Age of the oldest held job, by model and tier.",
		}, []string{"model", "tier"}),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.m.dispatched, s.m.depth, s.m.oldest)
	}
	return s
}

// Run takes every unacked submitted job and dispatches until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	cons, err := queue.ResetSchedulerConsumer(ctx, s.cfg.JS)
	if err != nil {
		return err
	}
	runStream, err := s.cfg.JS.Stream(ctx, queue.RunStream)
	if err != nil {
		return fmt.Errorf("run stream: %w", err)
	}
	// Submitted jobs arrive on their own goroutine; this loop alone owns
	// the queues.
	incoming := make(chan jetstream.Msg, 4096)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case incoming <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return fmt.Errorf("consume submitted jobs: %w", err)
	}
	defer cc.Stop()
	s.log.Info("scheduler started", "window", s.cfg.Window)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-incoming:
			s.accept(m)
			for more := true; more; {
				select {
				case m := <-incoming:
					s.accept(m)
				default:
					more = false
				}
			}
		case <-tick.C:
			s.observe()
		}
		if _, err := s.dispatch(ctx, runStream); err != nil && ctx.Err() == nil {
			s.log.Warn("dispatch", "err", err)
			sleep(ctx, time.Second)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// accept puts one submitted job in its model's queue.
func (s *Scheduler) accept(msg jetstream.Msg) {
	m, err := jobs.DecodeMessage(msg.Data())
	if err != nil {
		s.log.Error("dropping unreadable submitted message", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	q := s.queues[m.Model]
	if q == nil {
		q = &fifo{}
		s.queues[m.Model] = q
	}
	q.push(held{msg: msg, job: m})
}

func (s *Scheduler) held() int {
	n := 0
	for _, q := range s.queues {
		n += q.len()
	}
	return n
}

// inflight counts, per model, the jobs in the run stream: dispatched and
// not yet acked by a worker (a work-queue stream keeps each until acked).
func inflight(ctx context.Context, st jetstream.Stream) (map[string]int, error) {
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("jobs.run.>"))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, "jobs.run.")] = int(n)
	}
	return out, nil
}

// dispatch releases jobs while each model has room in its window.
func (s *Scheduler) dispatch(ctx context.Context, st jetstream.Stream) (int, error) {
	if s.held() == 0 {
		return 0, nil
	}
	busy, err := inflight(ctx, st)
	if err != nil {
		return 0, fmt.Errorf("read run stream: %w", err)
	}
	n := 0
	for model, q := range s.queues {
		room := s.cfg.Window - busy[model]
		if room <= 0 || q.len() == 0 {
			continue
		}
		batch := q.popN(room)
		done, err := s.release(ctx, batch)
		n += done
		// What could not be released goes back to the front, in order.
		q.unshift(batch[done:])
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// release publishes the run messages of batch, in order, and acks each
// submitted message once its run message is stored. It returns how many
// it finished with (dispatched or dropped).
func (s *Scheduler) release(ctx context.Context, batch []held) (int, error) {
	ids := make([]string, len(batch))
	for i, h := range batch {
		ids[i] = h.job.ID
	}
	recs, err := s.cfg.Store.GetMany(ctx, ids)
	if err != nil {
		return 0, err
	}
	for i, h := range batch {
		rec := recs[i]
		switch {
		case rec == nil:
			s.log.Warn("submitted job has no record, dropping", "job", h.job.ID, "tenant", h.job.Tenant)
		case rec.Status != jobs.Queued && rec.Status != jobs.Scheduled:
			// Canceled while waiting, or already handled by a previous
			// scheduler: nothing to run.
		default:
			if err := s.dispatchOne(ctx, h); err != nil {
				return i, err
			}
		}
		if err := h.msg.Ack(); err != nil {
			// The run message is stored; a redelivered submit is deduped
			// by its job id, and by the record's state.
			s.log.Warn("ack submitted job", "job", h.job.ID, "err", err)
		}
	}
	return len(batch), nil
}

func (s *Scheduler) observe() {
	now := time.Now()
	s.m.depth.Reset()
	s.m.oldest.Reset()
	for model, q := range s.queues {
		for tier, st := range q.stats(now) {
			s.m.depth.WithLabelValues(model, tier).Set(float64(st.n))
			s.m.oldest.WithLabelValues(model, tier).Set(st.oldest.Seconds())
		}
	}
}

// dispatchOne marks a job scheduled and publishes its run message. The
// record says scheduled before the run message exists, so that a worker
// never meets a job still marked queued. A publish that fails after the
// mark leaves the job held here, to be published again on the next pass
// (a job already scheduled is published again; JetStream drops the
// duplicate by its id).
func (s *Scheduler) dispatchOne(ctx context.Context, h held) error {
	now := time.Now()
	_, err := s.cfg.Store.Transition(ctx, h.job.ID, h.job.Tenant, jobs.Scheduled, jobs.Update{})
	var te *jobs.TransitionError
	switch {
	case err == nil:
		queue.PublishEvent(s.cfg.NATS, h.job.Tenant, h.job.ID, jobs.Scheduled, now)
	case errors.As(err, &te) && te.From == jobs.Scheduled:
	case errors.As(err, &te), errors.Is(err, jobs.ErrNotFound):
		return nil // canceled or gone meanwhile: nothing to run
	default:
		return err
	}
	if err := queue.Publish(ctx, s.cfg.JS, queue.RunSubject(h.job.Model), h.job.ID, h.job.Encode()); err != nil {
		return err
	}
	s.m.dispatched.WithLabelValues(h.job.Model, h.job.Tier).Inc()
	return nil
}
