package bench

import (
	"context"
	"fmt"
)

const aboutBatching = "The same fleet and the same closed-loop load, with the worker's adaptive micro-batching (up to the manifest's `max_batch`, waiting at most `max_wait_ms` for company) against `INFERQ_MAX_BATCH=1` (no batching). The worker is restarted between phases with the other setting; phases alternate adaptive, 1, adaptive, 1."

func runBatching(ctx context.Context, e *env, r *Result) error {
	for _, model := range e.size.BatchingModels {
		if err := batchingModel(ctx, e, r, model); err != nil {
			return fmt.Errorf("%s: %w", model, err)
		}
	}
	return nil
}

func batchingModel(ctx context.Context, e *env, r *Result, model string) error {
	s := e.size
	in, err := e.inputsFor(model)
	if err != nil {
		return err
	}
	f, err := e.startFleet(fleetOpts{name: "batching-" + model, models: []string{model}})
	if err != nil {
		return err
	}
	defer f.stop()
	spec := loadSpec{Model: model, Inputs: in.paths, ContentType: in.contentType, Concurrency: s.Concurrency, Warmup: s.Warmup, Window: s.Window}
	var ar, br, ap99, bp99, abatch []float64
	for round := range s.Rounds {
		for _, adaptive := range []bool{true, false} {
			if round > 0 || !adaptive {
				extra := []string{}
				if !adaptive {
					extra = append(extra, "INFERQ_MAX_BATCH=1")
				}
				if err := f.setWorker(extra...); err != nil {
					return err
				}
			}
			bm, err := f.batchMeter(model)
			if err != nil {
				return err
			}
			res, _, err := f.load(ctx, spec)
			if err != nil {
				return fmt.Errorf("phase (adaptive %v): %w", adaptive, err)
			}
			if adaptive {
				ar, ap99, abatch = append(ar, res.Rate()), append(ap99, res.P99), append(abatch, bm.since())
			} else {
				br, bp99 = append(br, res.Rate()), append(bp99, res.P99)
			}
			e.logf("batching %s round %d adaptive=%v: %.1f jobs/s, p99 %.0f ms", model, round+1, adaptive, res.Rate(), res.P99)
		}
	}
	r.ratio("adaptive_over_b1_"+model, ratioOfRounds(ar, br), model+": completed jobs/s with adaptive batching over max_batch 1")
	r.ratio("b1_over_adaptive_p99_"+model, ratioOfRounds(bp99, ap99), model+": p99 latency with max_batch 1 over adaptive (above 1: batching is faster)")
	r.figure("adaptive_jobs_per_s_"+model, mean(ar), "completed jobs/s")
	r.figure("b1_jobs_per_s_"+model, mean(br), "completed jobs/s")
	r.figure("adaptive_p99_ms_"+model, mean(ap99), "ms, submit to result")
	r.figure("b1_p99_ms_"+model, mean(bp99), "ms, submit to result")
	r.figure("adaptive_mean_batch_"+model, mean(abatch), "jobs per inference run")
	r.addSection(model+": each round", roundsTable([]string{"adaptive jobs/s", "max_batch 1 jobs/s", "adaptive p99 ms", "max_batch 1 p99 ms", "adaptive mean batch"}, ar, br, ap99, bp99, abatch))
	return nil
}
