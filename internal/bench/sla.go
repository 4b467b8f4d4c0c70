package bench

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/config"
	"github.com/inferq/inferq/internal/sla"
)

const aboutSLA = "First the scheduler's policy in the discrete-event simulator of `internal/sla`, over the standard traces (steady 0.8x and 1.5x load, bursty, a 100,000-job bulk upload on a premium stream), every policy on the same trace: FIFO, strict priority, plain EDF and inferq's. These are counts on fixed-seed traces, not timings, so they are the same on any machine. Then one real run on the fleet: three tenants (premium, standard, bulk; 20/30/50% of arrivals) submitting Poisson arrivals at 1.5x the fleet's measured capacity, then draining, with the scheduler's FIFO against inferq's deadline policy (`INFERQ_POLICY`), alternating, each on a fresh fleet. The real run's tier deadlines are shortened so that a run of seconds shows what hours of overload would."

// simTargets are the simulator's goals (the scheduler issue).
func simTargets(r *Result, results []sla.Result) {
	find := func(scen, pol string) (sla.Result, bool) {
		for _, x := range results {
			if x.Scenario == scen && x.Policy == pol {
				return x, true
			}
		}
		return sla.Result{}, false
	}
	for _, scen := range []string{"steady-0.8x", "steady-1.5x", "bursty", "bulk-upload"} {
		ours, ok := find(scen, "inferq")
		if !ok {
			continue
		}
		best := 0.0
		for _, b := range []string{"fifo", "strict-priority", "edf"} {
			if x, ok := find(scen, b); ok {
				best = max(best, x.Goodput())
			}
		}
		r.ratio("sim_"+scen+"_goodput_over_best_baseline", div(ours.Goodput(), best), scen+": inferq's goodput over the best of FIFO, strict priority and EDF (simulator)")
	}
	if ours, ok := find("steady-1.5x", "inferq"); ok {
		if sp, ok := find("steady-1.5x", "strict-priority"); ok {
			r.ratio("sim_steady-1.5x_standard_over_strict", div(ours.Tier("standard").Attainment(), sp.Tier("standard").Attainment()), "steady 1.5x: inferq's standard-tier attainment over strict priority's (simulator)")
			r.atLeast("sim_steady-1.5x_standard_over_strict", 1, "standard attainment at least strict priority's at 1.5x")
		}
		r.figure("sim_steady-1.5x_inferq_premium_attainment", ours.Tier("premium").Attainment(), "fraction of premium jobs in deadline, 1.5x (simulator)")
		r.atLeast("sim_steady-1.5x_inferq_premium_attainment", 0.999, "premium attainment at 1.5x overload")
		r.atLeast("sim_steady-1.5x_goodput_over_best_baseline", 1, "goodput at least the best baseline's at 1.5x")
	}
	if ours, ok := find("steady-0.8x", "inferq"); ok {
		lo := 1.0
		for _, t := range ours.Tiers {
			lo = min(lo, t.Attainment())
		}
		r.figure("sim_steady-0.8x_inferq_min_tier_attainment", lo, "lowest tier attainment at 0.8x load (simulator)")
		r.atLeast("sim_steady-0.8x_inferq_min_tier_attainment", 0.999, "every tier at least 99.9% at 0.8x load")
	}
	for _, x := range results {
		r.figure(fmt.Sprintf("sim_%s_%s_goodput", x.Scenario, x.Policy), x.Goodput(), "jobs in deadline per second (simulator)")
	}
}

// scaled shortens the standard traces for quick runs.
func scaled(f float64) []sla.Scenario {
	scs := sla.StandardScenarios()
	if f >= 1 {
		return scs
	}
	for i := range scs {
		s := &scs[i]
		s.Duration = time.Duration(float64(s.Duration) * f)
		for j := range s.Streams {
			st := &s.Streams[j]
			st.BurstEvery = time.Duration(float64(st.BurstEvery) * f)
			st.BurstLen = time.Duration(float64(st.BurstLen) * f)
			st.UploadAt = time.Duration(float64(st.UploadAt) * f)
			st.Upload = int(float64(st.Upload) * f)
		}
		s.Note += fmt.Sprintf(" (shortened to %g of its length for this run)", f)
	}
	return scs
}

// policySetting reports whether the scheduler reads INFERQ_POLICY.
func policySetting() bool {
	t := reflect.TypeOf(config.Config{})
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("env") == "INFERQ_POLICY" {
			return true
		}
	}
	return false
}

func runSLA(ctx context.Context, e *env, r *Result) error {
	s := e.size
	t0 := time.Now()
	scs := scaled(s.SimScale)
	results, err := sla.Compare(scs, sla.Contenders())
	if err != nil {
		return err
	}
	e.logf("sla simulator: %d runs in %s", len(results), time.Since(t0).Round(time.Millisecond))
	simTargets(r, results)
	r.addSection("Simulator", sla.Markdown(scs, results))
	return slaReal(ctx, e, r)
}

// tierMix is the real run's arrivals by tier, as in the simulator.
var tierMix = []tierShare{{"premium", 0.2}, {"standard", 0.3}, {"bulk", 0.5}}

type policyRun struct {
	tiers    map[string]*tierOutcome
	makespan float64
	rate     float64
}

func slaReal(ctx context.Context, e *env, r *Result) error {
	s := e.size
	policies := []string{"fifo", "deadline"}
	if !policySetting() {
		policies = []string{"fifo"}
		r.note("real run: " + errNoDeadlinePolicy.Error() + ", so only the scheduler's FIFO ran; inferq's policy is in the simulator table only")
	}
	in, err := e.inputsFor(s.SLAModel)
	if err != nil {
		return err
	}
	var capacity float64
	runs := map[string][]policyRun{}
	for round := range s.Rounds {
		for _, pol := range policies {
			f, err := e.startFleet(fleetOpts{
				name: "sla-" + pol, models: []string{s.SLAModel}, tiers: s.SLATiers,
				env: []string{"INFERQ_POLICY=" + pol},
			})
			if err != nil {
				return err
			}
			if capacity == 0 {
				res, _, err := f.load(ctx, loadSpec{Model: s.SLAModel, Inputs: in.paths, ContentType: in.contentType,
					Concurrency: s.Concurrency, Warmup: s.Warmup, Window: s.Window})
				if err != nil {
					f.stop()
					return fmt.Errorf("capacity: %w", err)
				}
				capacity = res.Rate()
				e.logf("sla: capacity %.1f jobs/s", capacity)
			}
			res, _, err := f.load(ctx, loadSpec{
				Model: s.SLAModel, Inputs: in.paths, ContentType: in.contentType,
				Rate: 1.5 * capacity, Mix: tierMix, Window: s.SLAArrivals, Seed: uint64(round + 1),
				Drain: 2*s.SLAArrivals + 60*time.Second,
			})
			f.stop()
			if err != nil {
				return fmt.Errorf("overload run (%s): %w", pol, err)
			}
			runs[pol] = append(runs[pol], policyRun{tiers: res.Tiers, makespan: res.Makespan, rate: float64(res.Submitted) / s.SLAArrivals.Seconds()})
			e.logf("sla round %d %s: %s", round+1, pol, summarize(res.Tiers))
		}
	}
	var rows []string
	goodput := map[string]float64{}
	for _, pol := range policies {
		tot := map[string]*tierOutcome{}
		var makespan float64
		for _, pr := range runs[pol] {
			makespan += pr.makespan
			for t, o := range pr.tiers {
				if tot[t] == nil {
					tot[t] = &tierOutcome{}
				}
				tot[t].Submitted += o.Submitted
				tot[t].Finished += o.Finished
				tot[t].Met += o.Met
			}
		}
		var met int
		for _, ts := range tierMix {
			o := tot[ts.Tier]
			if o == nil {
				continue
			}
			met += o.Met
			att := div(float64(o.Met), float64(o.Finished))
			r.figure(fmt.Sprintf("real_%s_%s_attainment", pol, ts.Tier), att, "fraction of finished jobs in deadline")
			rows = append(rows, fmt.Sprintf("| %s | %s | %d | %d | %d | %.2f%% |", pol, ts.Tier, o.Submitted, o.Finished, o.Met, 100*att))
		}
		goodput[pol] = div(float64(met), makespan)
		r.figure("real_"+pol+"_goodput", goodput[pol], "jobs in deadline per second, arrivals and drain")
	}
	r.figure("real_capacity_jobs_per_s", capacity, "the fleet's saturated rate, measured first")
	r.figure("real_arrival_rate", 1.5*capacity, "jobs/s offered (1.5x capacity)")
	if len(policies) == 2 {
		r.ratio("real_goodput_deadline_over_fifo", div(goodput["deadline"], goodput["fifo"]), "real fleet at 1.5x: goodput with inferq's policy over FIFO's")
		r.atLeast("real_goodput_deadline_over_fifo", 1, "inferq's policy at least FIFO's goodput on the real fleet")
	}
	var tiers []string
	for _, t := range sortedKeys(s.SLATiers) {
		tiers = append(tiers, fmt.Sprintf("%s %s", t, s.SLATiers[t]))
	}
	r.addSection("Real fleet at 1.5x", fmt.Sprintf("Model %s, capacity %.1f jobs/s measured by a closed loop first, arrivals at %.1f jobs/s for %s (20%% premium, 30%% standard, 50%% bulk), then drained; tier deadlines %s; %d round(s).\n\n",
		s.SLAModel, capacity, 1.5*capacity, s.SLAArrivals, strings.Join(tiers, ", "), s.Rounds)+
		"| policy | tier | submitted | finished | met | attainment |\n|---|---|---:|---:|---:|---:|\n"+strings.Join(rows, "\n"))
	return nil
}

func summarize(ts map[string]*tierOutcome) string {
	var parts []string
	for _, t := range sortedKeys(ts) {
		o := ts[t]
		parts = append(parts, fmt.Sprintf("%s %d/%d met", t, o.Met, o.Finished))
	}
	return strings.Join(parts, ", ")
}
