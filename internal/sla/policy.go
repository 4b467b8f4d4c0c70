package sla

import "time"

// Tier is a class of service: the deadline its jobs get by default and the
// share of the fleet it is guaranteed when it needs it.
type Tier struct {
	// Name is the tier's name as jobs carry it ("premium").
	Name string
	// Deadline is the time from submission to result that the tier promises.
	Deadline time.Duration
	// Share is the fraction of the model's capacity (0..1) guaranteed to the
	// tier while its queued jobs need it; what a tier does not use is lent.
	Share float64
}

// DefaultTiers returns the tiers of the design: premium (5 s, 50 %),
// standard (60 s, 30 %) and bulk (1 h, 20 %), highest priority first.
func DefaultTiers() []Tier {
	return []Tier{
		{Name: "premium", Deadline: 5 * time.Second, Share: 0.5},
		{Name: "standard", Deadline: time.Minute, Share: 0.3},
		{Name: "bulk", Deadline: time.Hour, Share: 0.2},
	}
}

// Job is what a policy needs to know about one queued job.
type Job struct {
	ID    string
	Tier  string
	Model string
	// Arrival is when the job was submitted; zero means the now of Push.
	Arrival time.Time
	// Deadline is when its result is due. Zero means Arrival plus the
	// tier's deadline (for the policies that know tiers; FIFO and EDF then
	// treat Arrival as the deadline).
	Deadline time.Time
}

// TierStats is a tier's queue at one instant, for metrics.
type TierStats struct {
	Tier string
	// Queued counts the tier's jobs in the queue, Late included.
	Queued int
	// Late counts queued jobs the policy has judged unable to meet their
	// deadline and moved behind the others (always 0 for the baselines).
	Late int
	// OldestWait is how long the tier's oldest queued job has waited.
	OldestWait time.Duration
}

// Policy orders the queued jobs of one model. Implementations are not safe
// for concurrent use, do no I/O and keep no clock: every method that needs
// the time takes it, so that the simulator can drive them. Push, Pop and
// Remove are O(log n) in the number of queued jobs (plus O(tiers)).
type Policy interface {
	// Push queues a job. A job whose ID is already queued is ignored, so a
	// redelivered submission does not run twice.
	Push(j Job, now time.Time)
	// Pop takes the job to dispatch next, or false when none is queued.
	Pop(now time.Time) (Job, bool)
	// Remove takes a queued job out (it was cancelled); false if not queued.
	Remove(id string) bool
	// Len is the number of queued jobs.
	Len() int
	// SetCapacity tells the policy how fast this model's workers serve:
	// jobsPerSecond is the fleet's throughput for the model at full batches
	// (the sum of what the workers announce), latency the time from dispatch
	// to result of one job (one batch). Policies that ignore time ignore it.
	SetCapacity(jobsPerSecond float64, latency time.Duration)
	// Stats returns one entry per tier seen, highest priority first. It is
	// O(tiers) and allocates only the returned slice.
	Stats(now time.Time) []TierStats
}
