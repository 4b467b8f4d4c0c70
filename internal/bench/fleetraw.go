package bench

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

const aboutFleetRaw = "The same model through the whole fleet (HTTP submit with the Go SDK, S3, JetStream, scheduler, worker, Redis, long-poll for the result), saturated by a closed-loop load generator in another process, against ONNX Runtime alone in the harness's process at the batch size the worker chose (its mean batch in that phase, from the worker's `inferq_worker_batch_size` histogram) and at batch 1. Phases alternate fleet, raw, fleet, raw; the ratio is the mean of each round's fleet/raw."

func runFleetRaw(ctx context.Context, e *env, r *Result) error {
	s := e.size
	model := s.FleetModel
	in, err := e.inputsFor(model)
	if err != nil {
		return err
	}
	raw, err := e.openRaw(model)
	if err != nil {
		return err
	}
	defer raw.close()
	f, err := e.startFleet(fleetOpts{name: "fleet-vs-raw", models: []string{model}})
	if err != nil {
		return err
	}
	defer f.stop()
	bm, err := f.batchMeter(model)
	if err != nil {
		return err
	}
	rawSlice := max(s.RawSlice*2, s.Window/3)
	var fleetRates, rawRates, raw1Rates, batches, p50s, p99s []float64
	var cpu []*cpuUse
	var jobs []float64
	for round := range s.Rounds {
		res, use, err := f.load(ctx, loadSpec{
			Model: model, Inputs: in.paths, ContentType: in.contentType,
			Concurrency: s.Concurrency, Warmup: s.Warmup, Window: s.Window,
		})
		if err != nil {
			return fmt.Errorf("fleet phase: %w", err)
		}
		b := bm.since()
		fleetRates, batches = append(fleetRates, res.Rate()), append(batches, b)
		p50s, p99s = append(p50s, res.P50), append(p99s, res.P99)
		cpu, jobs = append(cpu, use), append(jobs, float64(res.Completed))
		nb := max(1, int(math.Round(b)))
		rv, err := raw.rate(nb, rawSlice)
		if err != nil {
			return err
		}
		r1, err := raw.rate(1, rawSlice)
		if err != nil {
			return err
		}
		rawRates, raw1Rates = append(rawRates, rv), append(raw1Rates, r1)
		e.logf("fleet-vs-raw round %d: fleet %.1f jobs/s (mean batch %.1f), raw %.1f/s at batch %d, %.1f/s at batch 1", round+1, res.Rate(), b, rv, nb, r1)
	}
	r.ratio("fleet_over_raw", ratioOfRounds(fleetRates, rawRates), fmt.Sprintf("%s: fleet jobs/s over raw ONNX Runtime inputs/s at the worker's batch size", model))
	r.ratio("fleet_over_raw_b1", ratioOfRounds(fleetRates, raw1Rates), fmt.Sprintf("%s: fleet jobs/s over raw ONNX Runtime at batch 1", model))
	r.atLeast("fleet_over_raw", 0.9, "the fleet delivers at least 90% of what ONNX Runtime alone does")
	r.figure("fleet_jobs_per_s", mean(fleetRates), "completed jobs/s, saturated (mean of rounds)")
	r.figure("raw_per_s_at_worker_batch", mean(rawRates), "inputs/s, ONNX Runtime alone at the worker's batch")
	r.figure("raw_per_s_b1", mean(raw1Rates), "inputs/s, ONNX Runtime alone at batch 1")
	r.figure("worker_mean_batch", mean(batches), "jobs per inference run in the fleet")
	r.figure("fleet_p50_ms", mean(p50s), "ms, submit to result, closed loop (saturated)")
	r.figure("fleet_p99_ms", mean(p99s), "ms, submit to result, closed loop (saturated)")
	r.figure("load_concurrency", float64(s.Concurrency), "jobs in flight (closed loop)")
	r.addSection("CPU per job by process", cpuTable(cpu, jobs))
	r.addSection("Each round", roundsTable([]string{"fleet jobs/s", "mean batch", "raw at that batch /s", "raw batch 1 /s"}, fleetRates, batches, rawRates, raw1Rates))
	if s.ProfileMisses && s.ProfileWindow > 0 {
		ps, err := e.profileFleet(ctx, f, loadSpec{Model: model, Inputs: in.paths, ContentType: in.contentType, Concurrency: s.Concurrency}, s.ProfileWindow)
		if err != nil {
			r.note("profiles: " + err.Error())
		} else {
			per := cpuPerJob(cpu, jobs)
			r.addSection("Where the time goes", whereTimeGoes(per)+"\n\n"+profileMarkdown(ps, per))
		}
	}
	r.note(fmt.Sprintf("model %s, %d-input set of %s (%d bytes each); window %s after %s warm-up per phase; %d rounds", model, len(in.paths), in.contentType, in.size, s.Window, s.Warmup, s.Rounds))
	return nil
}

// cpuTable renders the CPU time per completed job of each process,
// summed over the phases given.
func cpuTable(uses []*cpuUse, jobs []float64) string {
	return cpuTableOver(uses, jobs, "over whole phases, warm-up and drain included, divided by the jobs completed in them")
}

// cpuTableOver is cpuTable with its own account of what the CPU was
// measured over and divided by.
func cpuTableOver(uses []*cpuUse, jobs []float64, over string) string {
	tot := map[string]time.Duration{}
	var n float64
	for i, u := range uses {
		for k, v := range u.ticks {
			tot[k] += v
		}
		n += jobs[i]
	}
	names := sortedKeys(tot)
	sort.SliceStable(names, func(i, j int) bool { return tot[names[i]] > tot[names[j]] })
	var b strings.Builder
	b.WriteString("| process | CPU µs per job | share |\n|---|---:|---:|\n")
	var all time.Duration
	for _, k := range names {
		all += tot[k]
	}
	for _, k := range names {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f%% |\n", k, float64(tot[k].Microseconds())/n, 100*float64(tot[k])/float64(all))
	}
	fmt.Fprintf(&b, "| **all** | %.0f | 100%% |\n", float64(all.Microseconds())/n)
	b.WriteString("\nCPU time of each process (from /proc, 10 ms ticks) " + over + ".")
	return b.String()
}

// cpuPerJob is cpuTable's figures as a map.
func cpuPerJob(uses []*cpuUse, jobs []float64) map[string]float64 {
	out := map[string]float64{}
	var n float64
	for i, u := range uses {
		for k, v := range u.ticks {
			out[k] += float64(v.Microseconds())
		}
		n += jobs[i]
	}
	for k := range out {
		out[k] /= n
	}
	return out
}

// roundsTable renders per-round columns.
func roundsTable(heads []string, cols ...[]float64) string {
	var b strings.Builder
	b.WriteString("| round | " + strings.Join(heads, " | ") + " |\n|---|" + strings.Repeat("---:|", len(heads)) + "\n")
	for i := range cols[0] {
		fmt.Fprintf(&b, "| %d |", i+1)
		for _, c := range cols {
			v := math.NaN()
			if i < len(c) {
				v = c[i]
			}
			fmt.Fprintf(&b, " %s |", fmtVal(v))
		}
		b.WriteString("\n")
	}
	return b.String()
}
