package sla

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults of the options of New.
const (
	DefaultAgeFactor = 2.0
	DefaultAgedShare = 0.05
	DefaultMargin    = 1.0
)

const (
	// creditCap bounds what a tier can bank, so a tier that was owed
	// service cannot claim a long run of dispatches in one go.
	creditCap = 2.0
	// rateWindow is the time constant of the per-tier dispatch rates that
	// ExpectedWait reads.
	rateWindow = 60 * time.Second
)

// Option tunes the policy returned by New.
type Option func(*config)

type config struct {
	ageFactor float64
	agedShare float64
	margin    float64
}

// WithAgeFactor sets the age bound: a job that has been judged late and has
// waited AgeFactor times its own deadline (time from arrival to deadline) is
// "aged" and is served within the aged share, whatever else is queued.
// At least 1; default DefaultAgeFactor.
func WithAgeFactor(f float64) Option { return func(c *config) { c.ageFactor = f } }

// WithAgedShare sets the fraction of dispatches (0..1) that aged jobs may
// take ahead of everything else. It is what bounds every job's wait under
// sustained overload; 0 lets aged jobs run only when nothing else is queued
// (and lets them starve). Default DefaultAgedShare.
func WithAgedShare(f float64) Option { return func(c *config) { c.agedShare = f } }

// WithMargin sets how many dispatch-to-result latencies (see SetCapacity) a
// job must still have before its deadline to count as able to make it.
// Default DefaultMargin.
func WithMargin(f float64) Option { return func(c *config) { c.margin = f } }

// tierState is one tier's queues and accounts inside Deadline.
type tierState struct {
	name     string
	deadline time.Duration
	share    float64
	live     jobHeap // jobs that can still make it, by deadline
	late     jobHeap // jobs that cannot, by the time they become aged
	credit   float64 // guaranteed dispatches owed (see Pop)
	rate     float64 // decayed dispatches per second
	rateAt   int64
}

// Deadline is inferq's policy for the jobs of one model: deadline order
// within tiers, guaranteed tier shares with lending, late jobs moved behind
// the ones that can still make it, and an age bound. See the package
// documentation for the algorithm. Create it with New.
type Deadline struct {
	book
	cfg        config
	tiers      []tierState
	capacity   float64 // jobs per second; 0 = unknown
	latency    int64   // ns from dispatch to result
	agedCredit float64
}

var _ Policy = (*Deadline)(nil)

// New returns inferq's policy for the given tiers, listed highest priority
// first (the order spare capacity is lent in). Shares must be >= 0; if they
// add up to more than 1 they are scaled down to add up to 1, if less the rest
// is not guaranteed to anyone. Jobs of a tier not listed are accepted and
// queue behind every listed tier with no share.
func New(tiers []Tier, opts ...Option) (*Deadline, error) {
	cfg := config{ageFactor: DefaultAgeFactor, agedShare: DefaultAgedShare, margin: DefaultMargin}
	for _, o := range opts {
		o(&cfg)
	}
	if !(cfg.ageFactor >= 1) || math.IsInf(cfg.ageFactor, 0) {
		return nil, fmt.Errorf("sla: age factor %v: must be at least 1", cfg.ageFactor)
	}
	if !(cfg.agedShare >= 0 && cfg.agedShare < 1) {
		return nil, fmt.Errorf("sla: aged share %v: must be in [0, 1)", cfg.agedShare)
	}
	if !(cfg.margin >= 0) || math.IsInf(cfg.margin, 0) {
		return nil, fmt.Errorf("sla: margin %v: must be >= 0", cfg.margin)
	}
	sum := 0.0
	seen := make(map[string]bool, len(tiers))
	for _, t := range tiers {
		switch {
		case t.Name == "":
			return nil, errors.New("sla: tier with an empty name")
		case seen[t.Name]:
			return nil, fmt.Errorf("sla: tier %q listed twice", t.Name)
		case t.Deadline <= 0:
			return nil, fmt.Errorf("sla: tier %q: deadline %v must be positive", t.Name, t.Deadline)
		case !(t.Share >= 0) || math.IsInf(t.Share, 0):
			return nil, fmt.Errorf("sla: tier %q: share %v must be >= 0", t.Name, t.Share)
		}
		seen[t.Name] = true
		sum += t.Share
	}
	scale := 1.0
	if sum > 1 {
		scale = 1 / sum
	}
	d := &Deadline{book: newBook(nil), cfg: cfg}
	for _, t := range tiers {
		i := d.state(t.Name)
		d.tiers[i].deadline = t.Deadline
		d.tiers[i].share = t.Share * scale
	}
	return d, nil
}

// state returns the index of a tier, adding it with no share when new.
func (d *Deadline) state(name string) int {
	i := d.tier(name)
	for len(d.tiers) <= i {
		d.tiers = append(d.tiers, tierState{
			name: d.names[len(d.tiers)],
			live: jobHeap{slot: slotOrder},
			late: jobHeap{slot: slotOrder},
		})
	}
	return i
}

// Push queues a job. A job that cannot meet its deadline even if the whole
// capacity served the jobs of its tier ahead of it is marked late at once.
func (d *Deadline) Push(j Job, now time.Time) {
	e := d.add(j, now)
	if e == nil {
		return
	}
	t := &d.tiers[d.state(j.Tier)]
	if j.Deadline.IsZero() {
		e.job.Deadline = e.job.Arrival.Add(t.deadline)
		e.deadline = e.job.Deadline.UnixNano()
	}
	if d.hopeless(e, t.live.len(), now.UnixNano()) {
		d.demote(t, e)
		return
	}
	e.key[slotOrder] = e.deadline
	t.live.push(e)
}

// hopeless says whether e cannot finish by its deadline if dispatched after
// ahead more jobs, at full capacity, from n.
func (d *Deadline) hopeless(e *entry, ahead int, n int64) bool {
	finish := float64(n) + d.cfg.margin*float64(d.latency)
	if d.capacity > 0 {
		finish += float64(ahead) / d.capacity * 1e9
	}
	return finish > float64(e.deadline)
}

// demote moves e (in no heap) to its tier's late queue, keyed by the time it
// becomes aged.
func (d *Deadline) demote(t *tierState, e *entry) {
	e.late = true
	rel := max(e.deadline-e.arrival, 0)
	e.key[slotOrder] = e.arrival + int64(d.cfg.ageFactor*float64(rel))
	t.late.push(e)
}

// urgent says whether a tier with live jobs needs its guaranteed share now:
// served at only its share of the capacity, starting now, its head must
// still have slack left after the whole backlog of the tier. When it does,
// the tier can lend its share and catch up later; when it does not (or the
// capacity is unknown), it claims it.
func (d *Deadline) urgent(t *tierState, n int64) bool {
	if d.capacity <= 0 {
		return true
	}
	need := float64(t.live.len()) / (t.share * d.capacity) * 1e9
	slack := float64(t.live.peek().deadline-n) - d.cfg.margin*float64(d.latency)
	return slack <= need
}

// Pop takes the next job to dispatch:
//
//  1. live heads that can no longer make it are moved to their tier's late
//     queue;
//  2. an aged job is taken if the aged share has a credit;
//  3. else the live head of the tier owed most by its guarantee (a tier
//     earns its share per dispatch while it is urgent);
//  4. else the live head of the highest-priority tier that has one (lending);
//  5. else, nothing live being queued, aged jobs, then late ones by priority.
func (d *Deadline) Pop(now time.Time) (Job, bool) {
	if len(d.byID) == 0 {
		return Job{}, false
	}
	n := now.UnixNano()
	aged, live := -1, false
	var agedKey int64
	for i := range d.tiers {
		t := &d.tiers[i]
		for t.live.len() > 0 && d.hopeless(t.live.peek(), 0, n) {
			d.demote(t, t.live.pop())
		}
		if t.late.len() > 0 {
			if k := t.late.peek().key[slotOrder]; k <= n && (aged < 0 || k < agedKey) {
				aged, agedKey = i, k
			}
		}
		if t.live.len() == 0 {
			t.credit = 0
			continue
		}
		live = true
		if t.share > 0 && d.urgent(t, n) {
			t.credit = min(t.credit+t.share, creditCap)
		} else {
			t.credit = 0
		}
	}
	if aged >= 0 {
		d.agedCredit = min(d.agedCredit+d.cfg.agedShare, creditCap)
	} else {
		d.agedCredit = 0
	}

	var t *tierState
	var e *entry
	switch {
	case aged >= 0 && (d.agedCredit >= 1 || !live):
		t = &d.tiers[aged]
		e = t.late.pop()
		d.agedCredit = max(d.agedCredit-1, 0)
	case live:
		pick := -1
		for i := range d.tiers {
			if c := d.tiers[i].credit; c >= 1 && (pick < 0 || c > d.tiers[pick].credit) {
				pick = i
			}
		}
		if pick < 0 {
			for i := range d.tiers {
				if d.tiers[i].live.len() > 0 {
					pick = i
					break
				}
			}
		}
		t = &d.tiers[pick]
		e = t.live.pop()
		t.credit = max(t.credit-1, 0)
	default:
		for i := range d.tiers {
			if d.tiers[i].late.len() > 0 {
				t = &d.tiers[i]
				break
			}
		}
		e = t.late.pop()
	}
	d.forget(e)
	t.rate = t.rateAt0(n) + 1/rateWindow.Seconds()
	t.rateAt = n
	return e.job, true
}

// rateAt0 is the tier's decayed dispatch rate at n, before any new dispatch.
func (t *tierState) rateAt0(n int64) float64 {
	if t.rate == 0 {
		return 0
	}
	dt := float64(n-t.rateAt) / float64(rateWindow)
	return t.rate * math.Exp(-max(dt, 0))
}

// Remove takes a cancelled job out of the queue.
func (d *Deadline) Remove(id string) bool {
	e, ok := d.byID[id]
	if !ok {
		return false
	}
	t := &d.tiers[e.tier]
	if e.late {
		t.late.remove(e)
	} else {
		t.live.remove(e)
	}
	d.forget(e)
	return true
}

// Len is the number of queued jobs, late ones included.
func (d *Deadline) Len() int { return len(d.byID) }

// SetCapacity sets the model's throughput at full batches and the time from
// dispatch to result. Until it is called, the policy judges jobs only by
// their deadlines (no work-ahead estimate) and every backlogged tier claims
// its share.
func (d *Deadline) SetCapacity(jobsPerSecond float64, latency time.Duration) {
	if !(jobsPerSecond > 0) || math.IsInf(jobsPerSecond, 0) {
		jobsPerSecond = 0
	}
	d.capacity = jobsPerSecond
	d.latency = int64(max(latency, 0))
}

// Stats returns queue depth, late jobs and oldest wait per tier.
func (d *Deadline) Stats(now time.Time) []TierStats {
	s := d.stats(now)
	for i := range s {
		s[i].Late = d.tiers[i].late.len()
	}
	return s
}

// ExpectedWait estimates the time from submitting a job of the tier now to
// its result, for admission and the estimated completion a client is told:
// the tier's live jobs ahead of it, served at the rate the tier can count on
// (its guaranteed share, or its recent rate plus the capacity nobody uses,
// whichever is more), plus the dispatch-to-result latency. It is zero until
// SetCapacity is called.
func (d *Deadline) ExpectedWait(tier string, now time.Time) time.Duration {
	if d.capacity <= 0 {
		return 0
	}
	n := now.UnixNano()
	used := 0.0
	for i := range d.tiers {
		used += d.tiers[i].rateAt0(n)
	}
	spare := max(d.capacity-used, 0)
	ahead, rate := 0, spare
	if i, ok := d.index[tier]; ok {
		t := &d.tiers[i]
		ahead = t.live.len()
		rate = max(t.share*d.capacity, t.rateAt0(n)+spare)
	}
	// A tier that gets nothing at all still gets aged jobs' share.
	rate = max(rate, d.cfg.agedShare*d.capacity, 1e-9)
	wait := min(float64(ahead+1)/rate, 1e7) * 1e9
	return time.Duration(wait) + time.Duration(d.latency)
}
