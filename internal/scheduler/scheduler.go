// Package scheduler owns the order in which jobs run. The leading
// scheduler (one holds a lease in NATS KV; others stand by) pulls submitted
// jobs from JOBS, keeps them in per-model queues ordered by a policy (the
// SLA-aware deadline policy of package sla by default), and releases them
// to jobs.run.<model> only while that model's dispatched but unfinished
// jobs are below what the workers announced they can take, so that the
// order is decided when a worker is about to start, not when the job
// arrived. It acks a submitted job only after its run message is stored: a
// scheduler that dies loses nothing, and the next leader rebuilds its
// queues from what is unacked.
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/sla"
)

// Config is what the scheduler needs.
type Config struct {
	NATS  *nats.Conn
	JS    jetstream.JetStream
	Store *jobs.Store
	Log   *slog.Logger
	// Tiers are the deployment's tiers (deadlines and shares).
	Tiers []sla.Tier
	// Policy names the queue order: "deadline" (default), "fifo", "edf" or
	// "strict".
	Policy string
	// JSReplicas is the replica count of the KV buckets it may create.
	JSReplicas int
	Metrics    prometheus.Registerer
	// OnLead, when set, runs while this scheduler leads, with a context
	// that ends when it stops leading (the periodic upkeep hangs here).
	OnLead func(ctx context.Context)
}

// held is a submitted job the scheduler holds unacked.
type held struct {
	msg jetstream.Msg
	job jobs.Message
}

// Scheduler runs the election and, while leading, the dispatch loop.
type Scheduler struct {
	cfg Config
	log *slog.Logger
	id  string
	m   *metrics

	// The dispatch loop alone touches what follows.
	queues   map[string]*modelQueue
	held     map[string]held
	capacity map[string]coord.ModelCapacity
	// busy counts, per model, the run messages that workers have not acked
	// yet, as last read plus what was published since (nil: not read).
	busy map[string]int
	// seen are the jobs received since the last settle, probes the probes
	// (orphans.go).
	seen   []string
	probes []jetstream.Msg
}

// New builds a scheduler.
func New(cfg Config) (*Scheduler, error) {
	if len(cfg.Tiers) == 0 {
		cfg.Tiers = sla.DefaultTiers()
	}
	if cfg.Policy == "" {
		cfg.Policy = "deadline"
	}
	if _, err := newPolicy(cfg.Policy, cfg.Tiers); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	s := &Scheduler{cfg: cfg, log: cfg.Log, id: fmt.Sprintf("%s-%d", host, os.Getpid())}
	s.m = newMetrics(cfg.Metrics, cfg.Store)
	return s, nil
}

func newPolicy(name string, tiers []sla.Tier) (sla.Policy, error) {
	switch name {
	case "deadline":
		return sla.New(tiers)
	case "fifo":
		return sla.NewFIFO(), nil
	case "edf":
		return sla.NewEDF(), nil
	case "strict":
		return sla.NewStrictPriority(tiers), nil
	}
	return nil, fmt.Errorf("unknown policy %q", name)
}

// leaseKey names the scheduler's lease.
const leaseKey = "scheduler"

// Run campaigns for the lease and leads while it holds it, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	kv, err := coord.Open(ctx, s.cfg.JS, s.cfg.JSReplicas)
	if err != nil {
		return err
	}
	lease := coord.NewLease(kv.Lease, leaseKey, s.id)
	s.log.Info("scheduler campaigning", "id", s.id, "policy", s.cfg.Policy)
	for ctx.Err() == nil {
		ok, err := lease.TryAcquire(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("lease", "err", err)
		}
		if !ok {
			s.m.leader.Set(0)
			sleep(ctx, kv.LeaseTTL/6)
			continue
		}
		s.log.Info("leading", "id", s.id)
		s.m.leader.Set(1)
		err = s.lead(ctx, lease, kv)
		s.m.leader.Set(0)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("stopped leading", "err", err)
		}
	}
	// Hand the lease over at once rather than after its TTL.
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = lease.Release(rctx)
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// keep renews the lease until ctx ends or the lease is lost; it cancels
// lead when leadership can no longer be vouched for.
func (s *Scheduler) keep(ctx context.Context, lease *coord.Lease, ttl time.Duration, lost context.CancelFunc) {
	t := time.NewTicker(ttl / 4)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := lease.Renew(ctx)
		switch {
		case err == nil:
			last = time.Now()
		case errors.Is(err, coord.ErrLost):
			s.log.Warn("lease lost to another scheduler")
			lost()
			return
		case time.Since(last) > ttl*2/3:
			// Unable to renew for most of the TTL: another scheduler may
			// take over any moment, so stop first.
			s.log.Warn("cannot renew the lease, stepping down", "err", err)
			lost()
			return
		}
	}
}

// lead runs the dispatch loop while this scheduler holds the lease.
func (s *Scheduler) lead(parent context.Context, lease *coord.Lease, kv *coord.Buckets) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.keep(ctx, lease, kv.LeaseTTL, cancel)
	}()
	if s.cfg.OnLead != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.cfg.OnLead(ctx)
		}()
	}
	s.queues, s.held, s.capacity, s.busy = map[string]*modelQueue{}, map[string]held{}, map[string]coord.ModelCapacity{}, nil
	s.seen, s.probes = nil, nil
	defer s.m.clear()
	runStream, err := s.cfg.JS.Stream(ctx, queue.RunStream)
	if err != nil {
		return fmt.Errorf("run stream: %w", err)
	}
	// Submitted jobs and cancellations arrive on their own goroutines;
	// this loop alone owns the queues.
	incoming := make(chan jetstream.Msg, 4096)
	gone := make(chan struct{}, 1)
	sc, err := s.consumeSubmitted(ctx, incoming, gone)
	if err != nil {
		return err
	}
	defer func() { sc.Stop() }()
	// Cancellations have a subject of their own, so that the scheduler
	// does not read every other state change of every job.
	canceled := make(chan string, 1024)
	sub, err := s.cfg.NATS.Subscribe(queue.CanceledSubject, func(m *nats.Msg) {
		var ev queue.Event
		if json.Unmarshal(m.Data, &ev) == nil {
			select {
			case canceled <- ev.ID:
			default: // release checks the records anyway
			}
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()

	// A worker arriving, leaving or changing its slots is seen at once,
	// not at the next refresh.
	workersChanged := make(chan struct{}, 1)
	watcher, err := kv.Workers.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch workers: %w", err)
	}
	defer watcher.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range watcher.Updates() {
			select {
			case workersChanged <- struct{}{}:
			default:
			}
		}
	}()

	tick := time.NewTicker(dispatchTick)
	defer tick.Stop()
	slow := time.NewTicker(time.Second)
	defer slow.Stop()
	s.refresh(ctx, kv)
	for {
		recount := false
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
			if len(s.probes) > 0 || len(s.seen) >= settleEvery {
				s.settle(ctx)
			}
		case id := <-canceled:
			s.cancel(id)
		case <-tick.C:
			// What the workers acked shows in the run stream only.
			recount = true
			s.settle(ctx)
		case <-workersChanged:
			s.readCapacity(ctx, kv)
		case <-slow.C:
			s.refresh(ctx, kv)
			s.checkConsumer(ctx, sc, gone)
		case <-gone:
			// On a NATS cluster a meta-leader election racing our reset
			// can leave the consumer deleted after we created it; the
			// pull then ends without a word and nothing would be
			// dispatched again (TestNATSRunLeaderKilled). Take the
			// consumer back: every unacked job is redelivered, and accept
			// keeps one queue entry per job.
			s.log.Warn("submitted-jobs consumer vanished, recreating it")
			sc.Stop()
			if sc, err = s.consumeSubmitted(ctx, incoming, gone); err != nil {
				return err
			}
		}
		if err := s.dispatch(ctx, runStream, recount); err != nil && ctx.Err() == nil {
			s.log.Warn("dispatch", "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// submitted is the leader's pull of submitted jobs.
type submitted struct {
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
}

// Stop ends the pull.
func (sc submitted) Stop() { sc.cc.Stop() }

// consumeSubmitted (re)creates the scheduler's consumer and pulls from it
// into incoming. A new leader takes every unacked submitted job:
// recreating the consumer makes them all deliverable again, at once. A
// consumer deleted under the pull is told on gone.
func (s *Scheduler) consumeSubmitted(ctx context.Context, incoming chan<- jetstream.Msg, gone chan struct{}) (submitted, error) {
	cons, err := queue.ResetSchedulerConsumer(ctx, s.cfg.JS)
	if err != nil {
		return submitted{}, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case incoming <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(1000), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.signalGone(gone)
		}
	}))
	if err != nil {
		return submitted{}, fmt.Errorf("consume submitted jobs: %w", err)
	}
	return submitted{cons: cons, cc: cc}, nil
}

// checkConsumer tells gone when the consumer no longer exists; briefly,
// so that an unanswered check never holds up dispatch.
func (s *Scheduler) checkConsumer(ctx context.Context, sc submitted, gone chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := sc.cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.signalGone(gone)
	}
}

func (s *Scheduler) signalGone(gone chan struct{}) {
	select {
	case gone <- struct{}{}:
	default:
	}
}

// accept queues one submitted job.
func (s *Scheduler) accept(msg jetstream.Msg) {
	if msg.Headers().Get(queue.ProbeHeader) != "" {
		s.probes = append(s.probes, msg)
		return
	}
	m, err := jobs.DecodeMessage(msg.Data())
	if err != nil {
		s.log.Error("dropping unreadable submitted message", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	// The run message is the submitted message's bytes (msg.Data), so the
	// held copy needs the routing fields only, not a second copy of an
	// inline input.
	m.Input = nil
	// A redelivery of a job already held replaces the handle, not the
	// queue entry.
	_, dup := s.held[m.ID]
	s.held[m.ID] = held{msg: msg, job: m}
	s.seen = append(s.seen, m.ID)
	if !dup {
		s.queue(m.Model).push(m, time.Now())
	}
}

func (s *Scheduler) queue(model string) *modelQueue {
	q := s.queues[model]
	if q == nil {
		p, _ := newPolicy(s.cfg.Policy, s.cfg.Tiers) // checked in New
		q = &modelQueue{policy: p}
		if c, ok := s.capacity[model]; ok {
			p.SetCapacity(c.Rate, c.Latency)
		}
		s.queues[model] = q
	}
	return q
}

// cancel drops a canceled job from its queue and acks its submission.
func (s *Scheduler) cancel(id string) {
	h, ok := s.held[id]
	if !ok {
		return
	}
	s.queue(h.job.Model).policy.Remove(id)
	delete(s.held, id)
	_ = h.msg.Ack()
}

// readCapacity reads the workers' announced slots and throughput.
func (s *Scheduler) readCapacity(ctx context.Context, kv *coord.Buckets) {
	capacity, err := coord.Capacity(ctx, kv.Workers)
	if err != nil {
		s.log.Warn("read worker capacity", "err", err)
		return
	}
	s.capacity = capacity
	for model, q := range s.queues {
		c := capacity[model]
		q.policy.SetCapacity(c.Rate, c.Latency)
	}
}

// refresh reads the workers' capacity and publishes estimates and metrics.
func (s *Scheduler) refresh(ctx context.Context, kv *coord.Buckets) {
	s.readCapacity(ctx, kv)
	capacity := s.capacity
	now := time.Now()
	est := coord.Estimates{}
	for model, q := range s.queues {
		est[model] = map[string]time.Duration{}
		for _, t := range s.cfg.Tiers {
			est[model][t.Name] = q.expectedWait(t.Name, now, capacity[model])
		}
	}
	if err := coord.PublishEstimates(ctx, kv.State, est); err != nil && ctx.Err() == nil {
		s.log.Warn("publish estimates", "err", err)
	}
	if err := coord.PublishQueues(ctx, kv.State, s.snapshot(now, capacity)); err != nil && ctx.Err() == nil {
		s.log.Warn("publish queues", "err", err)
	}
	s.m.observe(now, s.queues, capacity, s.cfg.Tiers)
}

// snapshot is the queues as the console shows them: what the metrics
// export, for readers without a Prometheus.
func (s *Scheduler) snapshot(now time.Time, capacity map[string]coord.ModelCapacity) coord.Queues {
	q := coord.Queues{Leader: s.id, At: now, Desired: map[string]int{}}
	for model, mq := range s.queues {
		byTier := map[string]sla.TierStats{}
		for _, st := range mq.policy.Stats(now) {
			byTier[st.Tier] = st
		}
		for _, t := range s.cfg.Tiers {
			st := byTier[t.Name]
			q.Stats = append(q.Stats, coord.QueueStats{Model: model, Tier: t.Name, Queued: st.Queued, Late: st.Late,
				OldestWait: st.OldestWait, ExpectedWait: mq.expectedWait(t.Name, now, capacity[model])})
		}
		q.Desired[model] = mq.desiredWorkers(now, capacity[model], s.cfg.Tiers)
	}
	return q
}

// dispatchTick is how often the dispatch loop looks for room when nothing
// else wakes it, and so how often at most it reads the run stream.
const dispatchTick = 25 * time.Millisecond

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

// readBusy reads the run stream into s.busy when it was never read, and
// on a tick (recount) when a model that has workers and jobs waiting looks
// full. Between reads, s.busy is the last count plus every run message
// published since: only the workers' acks lower the true count, so s.busy
// is never below it, and the room it leaves is room the workers have.
func (s *Scheduler) readBusy(ctx context.Context, st jetstream.Stream, recount bool) error {
	full := false
	for model, q := range s.queues {
		if slots := s.capacity[model].Slots; slots > 0 && q.policy.Len() > 0 && s.busy[model] >= slots {
			full = true
		}
	}
	if s.busy != nil && !(recount && full) {
		return nil
	}
	busy, err := inflight(ctx, st)
	if err != nil {
		return fmt.Errorf("read run stream: %w", err)
	}
	s.busy = busy
	return nil
}

// dispatch releases jobs while each model has room: the slots its workers
// announced, less what is already in the run stream. A model no worker
// serves keeps its jobs here, where their order can still change. One
// pass releases what it popped of every model together.
func (s *Scheduler) dispatch(ctx context.Context, st jetstream.Stream, recount bool) error {
	if len(s.held) == 0 {
		return nil
	}
	if err := s.readBusy(ctx, st, recount); err != nil {
		return err
	}
	now := time.Now()
	var batch []held
	for model, q := range s.queues {
		for room := s.capacity[model].Slots - s.busy[model]; room > 0; room-- {
			j, ok := q.policy.Pop(now)
			if !ok {
				break
			}
			if h, ok := s.held[j.ID]; ok {
				batch = append(batch, h)
			}
		}
	}
	if len(batch) == 0 {
		return nil
	}
	back, err := s.release(ctx, batch)
	for _, h := range batch {
		delete(s.held, h.job.ID)
	}
	// What could not be released goes back into its queue.
	for _, h := range back {
		s.held[h.job.ID] = h
		s.queue(h.job.Model).push(h.job, now)
	}
	return err
}

// publishWait bounds a pass's wait for JetStream's acks of its run
// messages. A message not acked by then goes back into its queue and is
// published again later; a copy stored meanwhile is dropped by its id.
const publishWait = 5 * time.Second

// release dispatches batch and returns the jobs to put back into their
// queues. Whatever the batch's size, it costs one Redis round trip and one
// wait for JetStream:
//   - One pipeline marks every job scheduled. The record says scheduled
//     before the run message exists, so that a worker never meets a job
//     still marked queued. A job already scheduled (by a previous leader,
//     or by a pass whose publish failed) is published again: JetStream
//     drops a duplicate by its id. A job canceled, already run or without
//     a record is dropped: nothing to run.
//   - The run messages are published asynchronously, each the submitted
//     message's bytes as they are (an inline input rides along), with the
//     job id as Nats-Msg-Id, and their acks awaited together.
//   - A submitted message is acked only once its run message is stored (or
//     its job dropped), so that a scheduler dying anywhere loses nothing.
func (s *Scheduler) release(ctx context.Context, batch []held) ([]held, error) {
	now := time.Now()
	moves := make([]jobs.Move, len(batch))
	for i, h := range batch {
		moves[i] = jobs.Move{ID: h.job.ID, Tenant: h.job.Tenant, To: jobs.Scheduled, Update: jobs.Update{ScheduledAt: now}}
	}
	var back, publish []held
	var fault error
	for i, res := range s.cfg.Store.TransitionMany(ctx, moves) {
		h := batch[i]
		var te *jobs.TransitionError
		switch {
		case res.Err == nil:
			queue.PublishEvent(s.cfg.NATS, h.job.Tenant, h.job.ID, jobs.Scheduled, now)
			publish = append(publish, h)
		case errors.As(res.Err, &te) && te.From == jobs.Scheduled:
			publish = append(publish, h)
		case errors.Is(res.Err, jobs.ErrNotFound):
			s.log.Warn("submitted job has no record, dropping", "job", h.job.ID, "tenant", h.job.Tenant)
			s.ack(h)
		case errors.As(res.Err, &te):
			s.ack(h) // canceled while waiting, or already handled by a previous leader
		default:
			fault = res.Err
			back = append(back, h)
		}
	}
	futures := make([]jetstream.PubAckFuture, len(publish))
	errs := make([]error, len(publish))
	for i, h := range publish {
		// Counted busy whether or not it gets stored: an overcount lasts
		// until the next read of the run stream, an undercount would
		// overfill the workers.
		s.busy[h.job.Model]++
		futures[i], errs[i] = s.cfg.JS.PublishMsgAsync(&nats.Msg{
			Subject: queue.RunSubject(h.job.Model),
			Data:    h.msg.Data(),
			Header:  nats.Header{jetstream.MsgIDHeader: []string{h.job.ID}},
		})
	}
	awaitAcks(ctx, futures, errs)
	for i, err := range errs {
		h := publish[i]
		if err != nil {
			fault = fmt.Errorf("publish %s to %s: %w", h.job.ID, queue.RunSubject(h.job.Model), err)
			back = append(back, h)
			continue
		}
		s.m.dispatched.WithLabelValues(h.job.Model, h.job.Tier).Inc()
		s.ack(h)
	}
	return back, fault
}

// awaitAcks waits, for at most publishWait all together, for JetStream's
// acks of async publishes, and sets errs[i] when message i is not known to
// be stored (a publish refused at once has its error set already).
func awaitAcks(ctx context.Context, futures []jetstream.PubAckFuture, errs []error) {
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	for i, f := range futures {
		if errs[i] != nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = err
		case <-ctx.Done():
			errs[i] = fmt.Errorf("no ack: %w", ctx.Err())
		}
	}
}

// ack acks a submitted message whose job is dispatched or dropped. A
// failed ack is only logged: a redelivered submission is dropped by the
// run message's id and by the record's state.
func (s *Scheduler) ack(h held) {
	if err := h.msg.Ack(); err != nil {
		s.log.Warn("ack submitted job", "job", h.job.ID, "err", err)
	}
}
