package sla

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stream is the arrival process of one tier in a Scenario: Poisson at Rate,
// at BurstRate during the first BurstLen of every BurstEvery (when both are
// set), plus Upload jobs all at once at UploadAt.
type Stream struct {
	Tier       string
	Rate       float64 // jobs per second
	BurstRate  float64 // jobs per second during bursts
	BurstEvery time.Duration
	BurstLen   time.Duration
	Upload     int
	UploadAt   time.Duration
}

func (s Stream) rateAt(t float64) float64 {
	if s.BurstEvery > 0 && s.BurstLen > 0 {
		every := s.BurstEvery.Seconds()
		if t-every*float64(int(t/every)) < s.BurstLen.Seconds() {
			return s.BurstRate
		}
	}
	return s.Rate
}

// Scenario is one simulated run: a fleet of Workers for one model, each
// taking up to MaxBatch queued jobs whenever it is free (late dispatch) and
// serving a batch of n in BatchBase + n*PerJob, and the arrivals of Streams
// during Duration. The run continues after Duration until every job has
// finished, so every job is counted as met or late.
type Scenario struct {
	Name      string
	Note      string
	Tiers     []Tier
	Workers   int
	MaxBatch  int
	BatchBase time.Duration
	PerJob    time.Duration
	Duration  time.Duration
	Streams   []Stream
	Seed      uint64
}

// Capacity is the fleet's throughput at full batches, in jobs per second.
func (s Scenario) Capacity() float64 {
	return float64(s.workers()*s.maxBatch()) / s.batchTime(s.maxBatch()).Seconds()
}

func (s Scenario) workers() int  { return max(s.Workers, 1) }
func (s Scenario) maxBatch() int { return max(s.MaxBatch, 1) }

func (s Scenario) batchTime(n int) time.Duration {
	return s.BatchBase + time.Duration(n)*s.PerJob
}

// simFleet is the fleet of the standard scenarios: 4 workers, batches of up
// to 8 taking 0.5 s + 0.125 s per job (3.3x the throughput of batch 1 at
// batch 8, about what a small model gets on a GPU), 21.3 jobs/s in all. It
// is slow enough that hours of arrivals stay a few hundred thousand jobs.
func simFleet(name, note string, seed uint64) Scenario {
	return Scenario{
		Name: name, Note: note, Tiers: DefaultTiers(),
		Workers: 4, MaxBatch: 8, BatchBase: 500 * time.Millisecond, PerJob: 125 * time.Millisecond,
		Duration: 2 * time.Hour, Seed: seed,
	}
}

// mix is the arrival mix of the standard traces: 20 % premium, 30 %
// standard, 50 % bulk.
var mix = []struct {
	tier string
	frac float64
}{{"premium", 0.2}, {"standard", 0.3}, {"bulk", 0.5}}

// Steady is two hours of Poisson arrivals at load times the fleet's
// capacity, 20 % premium, 30 % standard, 50 % bulk.
func Steady(load float64) Scenario {
	s := simFleet(fmt.Sprintf("steady-%gx", load),
		fmt.Sprintf("Poisson arrivals at %gx capacity for 2 h, 20%% premium / 30%% standard / 50%% bulk", load), 1)
	for _, m := range mix {
		s.Streams = append(s.Streams, Stream{Tier: m.tier, Rate: load * m.frac * s.Capacity()})
	}
	return s
}

// Bursty is two hours at 1.0x capacity on average, arriving in 20-minute
// cycles of 5 minutes at 3x and 15 minutes at 1/3x, same mix as Steady.
func Bursty() Scenario {
	s := simFleet("bursty", "20-minute cycles: 5 min at 3x capacity, 15 min at 1/3x (mean 1.0x) for 2 h, 20/30/50 mix", 2)
	for _, m := range mix {
		c := m.frac * s.Capacity()
		s.Streams = append(s.Streams, Stream{
			Tier: m.tier, Rate: c / 3, BurstRate: 3 * c,
			BurstEvery: 20 * time.Minute, BurstLen: 5 * time.Minute,
		})
	}
	return s
}

// BulkUpload is a 100,000-job bulk upload landing one minute into a steady
// premium stream at 0.3x capacity, for 2 hours.
func BulkUpload() Scenario {
	s := simFleet("bulk-upload", "100,000 bulk jobs at once at t=1 min on steady premium at 0.3x capacity, 2 h", 3)
	s.Streams = []Stream{
		{Tier: "premium", Rate: 0.3 * s.Capacity()},
		{Tier: "bulk", Upload: 100_000, UploadAt: time.Minute},
	}
	return s
}

// StandardScenarios are the traces of the benchmark table.
func StandardScenarios() []Scenario {
	return []Scenario{Steady(0.8), Steady(1.5), Bursty(), BulkUpload()}
}

// Contender is a policy under comparison.
type Contender struct {
	Name string
	New  func(tiers []Tier) (Policy, error)
}

// Contenders are the three baselines and inferq's policy, in table order.
func Contenders() []Contender {
	return []Contender{
		{"fifo", func([]Tier) (Policy, error) { return NewFIFO(), nil }},
		{"strict-priority", func(t []Tier) (Policy, error) { return NewStrictPriority(t), nil }},
		{"edf", func([]Tier) (Policy, error) { return NewEDF(), nil }},
		{"inferq", func(t []Tier) (Policy, error) { return New(t) }},
	}
}

// TierResult is what one tier got in a simulated run.
type TierResult struct {
	Tier     string
	Finished int
	Met      int // finished by the deadline
	// MaxWait is the longest time from arrival to result.
	MaxWait time.Duration
}

// Late is the number of jobs that finished after their deadline.
func (r TierResult) Late() int { return r.Finished - r.Met }

// Attainment is Met / Finished (1 when nothing finished).
func (r TierResult) Attainment() float64 {
	if r.Finished == 0 {
		return 1
	}
	return float64(r.Met) / float64(r.Finished)
}

// Result is one policy on one scenario. Every arrived job has finished.
type Result struct {
	Scenario string
	Policy   string
	// Duration is the arrival window that goodput is measured over.
	Duration time.Duration
	// Makespan is when the last job finished.
	Makespan time.Duration
	Tiers    []TierResult
}

// Tier returns the result of one tier (zero if it had no jobs).
func (r Result) Tier(name string) TierResult {
	for _, t := range r.Tiers {
		if t.Tier == name {
			return t
		}
	}
	return TierResult{Tier: name}
}

// Total sums the tiers; its MaxWait is the longest of any tier.
func (r Result) Total() TierResult {
	all := TierResult{Tier: "all"}
	for _, t := range r.Tiers {
		all.Finished += t.Finished
		all.Met += t.Met
		all.MaxWait = max(all.MaxWait, t.MaxWait)
	}
	return all
}

// Goodput is jobs finished within their deadline per second of the run
// (arrivals and drain), all tiers.
func (r Result) Goodput() float64 { return float64(r.Total().Met) / r.Makespan.Seconds() }

type arrival struct {
	at   int64 // ns since the start
	tier int
}

// trace draws the scenario's arrivals, sorted by time; the same seed gives
// the same trace whatever the policy.
func (s Scenario) trace() []arrival {
	var out []arrival
	dur := s.Duration.Seconds()
	for si, st := range s.Streams {
		r := rand.New(rand.NewPCG(s.Seed, uint64(si)))
		top := max(st.Rate, st.BurstRate)
		if top > 0 {
			// Thinning: draw at the top rate, keep at the rate of the moment.
			for t := r.ExpFloat64() / top; t < dur; t += r.ExpFloat64() / top {
				if r.Float64()*top < st.rateAt(t) {
					out = append(out, arrival{at: int64(t * 1e9), tier: si})
				}
			}
		}
		for range st.Upload {
			out = append(out, arrival{at: int64(st.UploadAt), tier: si})
		}
	}
	slices.SortStableFunc(out, func(a, b arrival) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	return out
}

// epoch is the simulated wall clock's zero.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type simWorker struct {
	busy   bool
	freeAt int64
	batch  []Job
}

// Simulate runs the scenario with the policy p (fresh, not shared between
// runs) and returns what each tier got. It is deterministic.
func Simulate(s Scenario, p Policy) Result {
	arr := s.trace()
	deadline := make(map[string]time.Duration, len(s.Tiers))
	for _, t := range s.Tiers {
		deadline[t.Name] = t.Deadline
	}
	res := Result{Duration: s.Duration, Tiers: make([]TierResult, len(s.Streams))}
	tierOf := make(map[string]int, len(s.Streams))
	for i, st := range s.Streams {
		res.Tiers[i].Tier = st.Tier
		tierOf[st.Tier] = i
	}
	p.SetCapacity(s.Capacity(), s.batchTime(s.maxBatch()))

	ws := make([]simWorker, s.workers())
	busy := 0
	dispatch := func(now int64) {
		for i := range ws {
			w := &ws[i]
			if w.busy || p.Len() == 0 {
				continue
			}
			w.batch = w.batch[:0]
			t := epoch.Add(time.Duration(now))
			for len(w.batch) < s.maxBatch() {
				j, ok := p.Pop(t)
				if !ok {
					break
				}
				w.batch = append(w.batch, j)
			}
			if len(w.batch) > 0 {
				w.busy, w.freeAt = true, now+int64(s.batchTime(len(w.batch)))
				busy++
			}
		}
	}

	next := 0
	for next < len(arr) || busy > 0 {
		wi := -1
		for i := range ws {
			if ws[i].busy && (wi < 0 || ws[i].freeAt < ws[wi].freeAt) {
				wi = i
			}
		}
		if next < len(arr) && (wi < 0 || arr[next].at <= ws[wi].freeAt) {
			a := arr[next]
			st := s.Streams[a.tier]
			at := epoch.Add(time.Duration(a.at))
			p.Push(Job{
				ID: strconv.Itoa(next), Tier: st.Tier, Model: "sim",
				Arrival: at, Deadline: at.Add(deadline[st.Tier]),
			}, at)
			next++
			dispatch(a.at)
			continue
		}
		w := &ws[wi]
		done := epoch.Add(time.Duration(w.freeAt))
		for _, j := range w.batch {
			tr := &res.Tiers[tierOf[j.Tier]]
			tr.Finished++
			if !done.After(j.Deadline) {
				tr.Met++
			}
			tr.MaxWait = max(tr.MaxWait, done.Sub(j.Arrival))
		}
		res.Makespan = time.Duration(w.freeAt)
		w.busy = false
		busy--
		dispatch(w.freeAt)
	}
	return res
}

// Compare runs every contender on every scenario, scenario by scenario.
func Compare(scenarios []Scenario, contenders []Contender) ([]Result, error) {
	var out []Result
	for _, s := range scenarios {
		for _, c := range contenders {
			p, err := c.New(s.Tiers)
			if err != nil {
				return nil, fmt.Errorf("policy %s for %s: %w", c.Name, s.Name, err)
			}
			r := Simulate(s, p)
			r.Scenario, r.Policy = s.Name, c.Name
			out = append(out, r)
		}
	}
	return out, nil
}

// Markdown renders results (as Compare returns them) as one table per
// scenario: a row per policy and tier, then the policy's total.
func Markdown(scenarios []Scenario, results []Result) string {
	var b strings.Builder
	for _, s := range scenarios {
		fmt.Fprintf(&b, "### %s\n\n%s. %d workers, batches of up to %d in %v + %v/job, capacity %.1f jobs/s; arrivals stop after %v and the queue drains; goodput = jobs met per second of the whole run.\n\n",
			s.Name, s.Note, s.workers(), s.maxBatch(), s.BatchBase, s.PerJob, s.Capacity(), s.Duration)
		b.WriteString("| policy | tier | finished | met | attainment | late | goodput (jobs/s) | max wait |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range results {
			if r.Scenario != s.Name {
				continue
			}
			rows := append(slices.Clone(r.Tiers), r.Total())
			for _, t := range rows {
				name := t.Tier
				if name == "all" {
					name = "**all**"
				}
				fmt.Fprintf(&b, "| %s | %s | %d | %d | %.2f%% | %d | %.2f | %s |\n",
					r.Policy, name, t.Finished, t.Met, 100*t.Attainment(), t.Late(),
					float64(t.Met)/r.Makespan.Seconds(), t.MaxWait.Round(time.Second))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
