package scheduler

import (
	"math"
	"time"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/sla"
)

// modelQueue is one model's queue: its policy, and the arrival rate that
// sizes the fleet it wants.
type modelQueue struct {
	policy   sla.Policy
	arrivals float64 // jobs per second, moving estimate
	last     time.Time
}

// arrivalWindow is the time constant of the arrival-rate estimate.
const arrivalWindow = 30 * time.Second

func (q *modelQueue) push(m jobs.Message, now time.Time) {
	q.policy.Push(sla.Job{ID: m.ID, Tier: m.Tier, Model: m.Model, Arrival: m.CreatedAt, Deadline: m.Deadline}, now)
	q.decay(now)
	q.arrivals += 1 / arrivalWindow.Seconds()
}

func (q *modelQueue) decay(now time.Time) {
	if !q.last.IsZero() && now.After(q.last) {
		q.arrivals *= math.Exp(-now.Sub(q.last).Seconds() / arrivalWindow.Seconds())
	}
	if now.After(q.last) {
		q.last = now
	}
}

// expectedWait is the time from a submit now to its result: the deadline
// policy's own estimate, or for the plain orders the queue ahead served
// at the fleet's rate.
func (q *modelQueue) expectedWait(tier string, now time.Time, c coord.ModelCapacity) time.Duration {
	if d, ok := q.policy.(*sla.Deadline); ok {
		return d.ExpectedWait(tier, now)
	}
	if c.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(q.policy.Len())/c.Rate*float64(time.Second)) + c.Latency
}

// desiredWorkers is how many workers of the model the queue asks for, to
// meet the deadlines at the present arrival rate: the arrivals plus the
// backlog spread over the most urgent tier's deadline, divided by what one
// worker does. Zero when nothing waits or arrives (scale to zero).
func (q *modelQueue) desiredWorkers(now time.Time, c coord.ModelCapacity, tiers []sla.Tier) int {
	q.decay(now)
	backlog := q.policy.Len()
	if backlog == 0 && q.arrivals < 0.01 {
		return 0
	}
	perWorker := 0.0
	if c.Workers > 0 {
		perWorker = c.Rate / float64(c.Workers)
	}
	if perWorker <= 0 {
		return max(c.Workers, 1) // nothing measured yet: ask for one
	}
	horizon := time.Hour
	for _, st := range q.policy.Stats(now) {
		if st.Queued == 0 {
			continue
		}
		for _, t := range tiers {
			if t.Name == st.Tier && t.Deadline < horizon {
				horizon = t.Deadline
			}
		}
	}
	need := q.arrivals + float64(backlog)/max(horizon.Seconds(), 1)
	return min(int(math.Ceil(need/perWorker)), 10000)
}
