package worker

import (
	"math"
	"sort"
	"sync"
	"time"
)

// ServiceTimes keeps a moving estimate of how long one inference run of n
// jobs takes, per batch size, for one model on one device.
type ServiceTimes struct {
	mu sync.Mutex
	by map[int]time.Duration
}

// serviceAlpha weighs a new observation in the moving estimate.
const serviceAlpha = 0.2

// Observe records that a run of n jobs took d.
func (s *ServiceTimes) Observe(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[int]time.Duration{}
	}
	if old, ok := s.by[n]; ok {
		d = time.Duration(float64(old)*(1-serviceAlpha) + float64(d)*serviceAlpha)
	}
	s.by[n] = d
}

// Estimate is the expected time of a run of n jobs: measured for n, else
// interpolated (or extrapolated) linearly from the nearest measured sizes,
// else zero when nothing has been measured.
func (s *ServiceTimes) Estimate(n int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.by[n]; ok {
		return d
	}
	if len(s.by) == 0 {
		return 0
	}
	sizes := make([]int, 0, len(s.by))
	for k := range s.by {
		sizes = append(sizes, k)
	}
	sort.Ints(sizes)
	if len(sizes) == 1 {
		// One point: assume cost proportional to size.
		k := sizes[0]
		return time.Duration(float64(s.by[k]) * float64(n) / float64(k))
	}
	// The two measured sizes around n (or the two nearest at an end).
	i := sort.SearchInts(sizes, n)
	i = min(max(i, 1), len(sizes)-1)
	a, b := sizes[i-1], sizes[i]
	da, db := float64(s.by[a]), float64(s.by[b])
	d := da + (db-da)*float64(n-a)/float64(b-a)
	return time.Duration(max(d, 0))
}

// Throughput is the jobs per second of full batches of maxBatch, and the
// time of one such batch, from what has been measured (0 when nothing
// has).
func (s *ServiceTimes) Throughput(maxBatch int) (float64, time.Duration) {
	d := s.Estimate(maxBatch)
	if d <= 0 {
		return 0, 0
	}
	return float64(maxBatch) / d.Seconds(), d
}

// RateMeter is a moving estimate of an event rate, per second.
type RateMeter struct {
	mu   sync.Mutex
	rate float64
	last time.Time
}

// rateWindow is the time constant of the rate estimate.
const rateWindow = 2 * time.Second

// Add records n events at now.
func (r *RateMeter) Add(now time.Time, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decay(now)
	r.rate += float64(n) / rateWindow.Seconds()
}

func (r *RateMeter) decay(now time.Time) {
	if !r.last.IsZero() && now.After(r.last) {
		r.rate *= math.Exp(-now.Sub(r.last).Seconds() / rateWindow.Seconds())
	}
	if now.After(r.last) {
		r.last = now
	}
}

// Rate is the estimated events per second at now.
func (r *RateMeter) Rate(now time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decay(now)
	return r.rate
}

// Batcher decides when a batch stops waiting for company. Its inputs are
// explicit (the clock among them), so that its rules can be tested alone.
type Batcher struct {
	MaxBatch int
	// MaxWait caps how long the first job of a batch waits for others.
	MaxWait  time.Duration
	Service  *ServiceTimes
	Arrivals *RateMeter
}

// Wait says how long a batch of n jobs, whose first job arrived at start
// and whose earliest deadline is earliest, may still wait for more jobs at
// now; zero or less means run it now. The batch closes when it is full;
// when the wait cap has run out; when waiting for one more job would make
// the earliest deadline late, given the measured time of a batch one
// larger; and at once when the device is idle and, at the recent arrival
// rate, no other job is expected within the wait (a lone job goes at once).
func (b *Batcher) Wait(now, start time.Time, n int, earliest time.Time, idle bool) time.Duration {
	if n >= b.MaxBatch {
		return 0
	}
	wait := start.Add(b.MaxWait).Sub(now)
	if !earliest.IsZero() {
		wait = min(wait, earliest.Add(-b.Service.Estimate(n+1)).Sub(now))
	}
	if wait <= 0 {
		return 0
	}
	if idle && b.Arrivals.Rate(now)*wait.Seconds() < 1 {
		return 0
	}
	return wait
}
