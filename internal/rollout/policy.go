package rollout

import (
	"cmp"
	"fmt"
	"time"
)

// Counters are what workers count for one version during a rollout.
type Counters struct {
	// Jobs ran to an end on the version; Failed of them failed; Met met
	// their deadline.
	Jobs   int64 `json:"jobs"`
	Failed int64 `json:"failed"`
	Met    int64 `json:"met_deadline"`
	// RunMicros sums each job's share of its batch's run time (the batch's
	// time over its size), so versions compare per job whatever the batch
	// sizes they saw.
	RunMicros int64 `json:"run_us"`
	// Shadow counts this version's jobs that also ran on the other
	// version; Agree those whose outputs matched.
	Shadow int64 `json:"shadow"`
	Agree  int64 `json:"agree"`
}

func (c Counters) failRate() float64  { return ratio(c.Failed, c.Jobs) }
func (c Counters) metRate() float64   { return ratio(c.Met, c.Jobs) }
func (c Counters) perJob() float64    { return ratio(c.RunMicros, c.Jobs-c.Failed) }
func (c Counters) agreement() float64 { return ratio(c.Agree, c.Shadow) }

func ratio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Thresholds are what a rollout must stay within; zero fields take the
// defaults of DefaultThresholds.
type Thresholds struct {
	// MinJobs is the sample each version needs before failures, latency
	// and deadlines are judged (and the new version before promotion).
	MinJobs int64
	// MaxFailRise rolls back when the new version fails this much more
	// often than the old (0.05: five points).
	MaxFailRise float64
	// MaxSlowdown rolls back when the new version's run time per job is
	// this many times the old one's, and SlowdownFloor more in absolute
	// terms: a model that runs in microseconds shows ratios of several on
	// a busy machine that no client would notice.
	MaxSlowdown   float64
	SlowdownFloor time.Duration
	// MaxDeadlineDrop rolls back when the new version meets deadlines this
	// much less often than the old (0.1: ten points).
	MaxDeadlineDrop float64
	// MinShadow is the sample of compared outputs needed to judge
	// agreement; MinAgreement the share of them that must agree.
	MinShadow    int64
	MinAgreement float64
}

// DefaultThresholds are the thresholds of a deployment that sets none.
var DefaultThresholds = Thresholds{MinJobs: 20, MaxFailRise: 0.05, MaxSlowdown: 2, SlowdownFloor: time.Millisecond, MaxDeadlineDrop: 0.1, MinShadow: 10, MinAgreement: 0.9}

func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds
	return Thresholds{
		MinJobs: cmp.Or(max(t.MinJobs, 0), d.MinJobs), MaxFailRise: cmp.Or(t.MaxFailRise, d.MaxFailRise),
		MaxSlowdown: cmp.Or(t.MaxSlowdown, d.MaxSlowdown), SlowdownFloor: cmp.Or(t.SlowdownFloor, d.SlowdownFloor),
		MaxDeadlineDrop: cmp.Or(t.MaxDeadlineDrop, d.MaxDeadlineDrop), MinShadow: cmp.Or(t.MinShadow, d.MinShadow),
		MinAgreement: cmp.Or(t.MinAgreement, d.MinAgreement),
	}
}

// Action is what a judgement decides.
type Action int

// The actions of a judgement.
const (
	Hold Action = iota
	Promote
	RollBack
)

// Verdict is a judgement and why.
type Verdict struct {
	Action Action
	Reason string
}

// Decide judges a running rollout: roll back as soon as the new version is
// past a threshold on a large enough sample, promote at the end of a clean
// window once the new version has its sample, hold otherwise (a window
// that ends with too few jobs on the new version runs on until it has
// them, or the operator decides). It is pure: the same state and time give
// the same verdict, which the simulator test relies on.
func Decide(s State, now time.Time, t Thresholds) Verdict {
	if s.Status != Running {
		return Verdict{Action: Hold}
	}
	t = t.withDefaults()
	old, neu := s.Counts[s.From], s.Counts[s.To]
	// Disagreement comes first: it is the most specific evidence (the
	// other signals may follow from it, or from a busy machine).
	shadow := Counters{Shadow: old.Shadow + neu.Shadow, Agree: old.Agree + neu.Agree}
	if shadow.Shadow >= t.MinShadow && shadow.agreement() < t.MinAgreement {
		return Verdict{RollBack, fmt.Sprintf("outputs agree on %.1f%% of %d shadowed jobs", 100*shadow.agreement(), shadow.Shadow)}
	}
	if neu.Jobs >= t.MinJobs {
		if rise := neu.failRate() - old.failRate(); rise > t.MaxFailRise {
			return Verdict{RollBack, fmt.Sprintf("failure rate %.1f%% against %.1f%% on version %s (%d jobs)", 100*neu.failRate(), 100*old.failRate(), s.From, neu.Jobs)}
		}
		if old.Jobs >= t.MinJobs {
			if drop := old.metRate() - neu.metRate(); drop > t.MaxDeadlineDrop {
				return Verdict{RollBack, fmt.Sprintf("deadlines met %.1f%% against %.1f%% on version %s", 100*neu.metRate(), 100*old.metRate(), s.From)}
			}
			if o, n := old.perJob(), neu.perJob(); o > 0 && n > t.MaxSlowdown*o && n-o > float64(t.SlowdownFloor.Microseconds()) {
				return Verdict{RollBack, fmt.Sprintf("run time per job %.0fµs against %.0fµs on version %s", n, o, s.From)}
			}
		}
	}
	if !now.Before(s.Started.Add(s.Window)) && neu.Jobs >= t.MinJobs {
		return Verdict{Promote, fmt.Sprintf("clean window of %v, %d jobs on version %s", s.Window, neu.Jobs, s.To)}
	}
	return Verdict{Action: Hold}
}
