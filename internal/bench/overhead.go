package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/jobs"
)

const aboutOverhead = "`echo` (next to no compute) through the whole fleet, so that what is measured is the fleet itself: the saturated rate (closed loop), the CPU each process spends per job, and latency percentiles under open-loop Poisson load at 80% and 90% of the saturated rate. Beside it, alternating with the saturated phases, the raw JetStream rate of this machine for publish + pull-consume + ack of a message of the size the fleet's queue messages have (an echo job's with its 1 KiB input inline, as small inputs travel), measured by the harness with nats.go on the same NATS server (file storage, work-queue retention, like the fleet's streams). A job crosses two streams (JOBS, RUN), Redis several times and two HTTP requests, so the ratio says how much of JetStream's ceiling the rest of the path leaves; the profiles say where the time goes. First of all, the cold first job, tried as a new user would: a fresh fleet (its own NATS and Redis) whose producer, scheduler and worker are started at once, as docker compose or a script starts them; once every process answers `/readyz`, one echo job from a new client, timed from submit to `succeeded` (long-poll), then a few more one at a time; a fresh fleet each round. One more fresh fleet gets its first job as soon as the producer alone answers `/readyz` (what a user of the API alone can see): a figure, not the target."

// jsMessageSize is the size of the fleet's queue message for a typical
// echo job: its input is small enough to ride inline.
func jsMessageSize() int {
	now := time.Now().UTC()
	return len(jobs.MessageFor(&jobs.Job{
		ID: jobs.NewID(), Tenant: "bench-standard", Tier: "standard", Model: "echo",
		CreatedAt: now, Deadline: now.Add(time.Minute), Input: make([]byte, echoInputBytes),
		ContentType: "application/octet-stream", InputSize: echoInputBytes,
	}).Encode())
}

// jetstreamRate publishes messages of size bytes to a file-backed
// work-queue stream while a pull consumer fetches and acks them, for d,
// and returns the acked messages per second.
func jetstreamRate(ctx context.Context, url string, size int, d time.Duration) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("BENCH%d", time.Now().UnixNano())
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{"bench." + name}, Storage: jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy,
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.Background(), name) }()
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000,
	})
	if err != nil {
		return 0, err
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = 'x'
	}
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var pubErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for runCtx.Err() == nil {
			if _, err := js.PublishAsync("bench."+name, data); err != nil {
				if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
					pubErr = err
					return
				}
			}
		}
	}()
	var acked atomic.Int64
	start := time.Now()
	for runCtx.Err() == nil {
		b, err := cons.Fetch(256, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return 0, err
		}
		for m := range b.Messages() {
			if m.Ack() == nil {
				acked.Add(1)
			}
		}
	}
	el := time.Since(start)
	cancel()
	wg.Wait()
	if pubErr != nil {
		return 0, pubErr
	}
	return float64(acked.Load()) / el.Seconds(), nil
}

func runOverhead(ctx context.Context, e *env, r *Result) error {
	s := e.size
	in, err := e.inputsFor("echo")
	if err != nil {
		return err
	}
	// The cold first job first, on fleets of its own, while the machine
	// is otherwise idle.
	var colds []coldStart
	for i := range s.Rounds {
		cs, err := e.coldFleet(ctx, in, false)
		if err != nil {
			return fmt.Errorf("cold first job: %w", err)
		}
		colds = append(colds, cs)
		e.logf("overhead cold start %d: every /readyz after %.1fs, first job %.0f ms, then %s ms", i+1, cs.ready.Seconds(), cs.cold, fmtList(cs.warm))
	}
	// And once as a user who asks only the API (the producer) whether the
	// fleet is ready.
	apiOnly, err := e.coldFleet(ctx, in, true)
	if err != nil {
		return fmt.Errorf("cold first job, producer's /readyz only: %w", err)
	}
	e.logf("overhead cold start, producer's /readyz only: ready after %.1fs, first job %.0f ms, then %s ms", apiOnly.ready.Seconds(), apiOnly.cold, fmtList(apiOnly.warm))
	f, err := e.startFleet(fleetOpts{name: "overhead", models: []string{"echo"}, env: []string{"INFERQ_PPROF=1"}})
	if err != nil {
		return err
	}
	defer f.stop()
	bm, err := f.batchMeter("echo")
	if err != nil {
		return err
	}
	size := jsMessageSize()
	sat := loadSpec{Model: "echo", Inputs: in.paths, ContentType: in.contentType, Concurrency: 2 * s.Concurrency, Warmup: s.Warmup, Window: s.Window}
	var fleetRates, jsRates, batches []float64
	var cpu []*cpuUse
	var njobs []float64
	for round := range s.Rounds {
		res, use, err := f.load(ctx, sat)
		if err != nil {
			return fmt.Errorf("saturated phase: %w", err)
		}
		batches = append(batches, bm.since())
		fleetRates, cpu, njobs = append(fleetRates, res.Rate()), append(cpu, use), append(njobs, float64(res.Completed))
		jr, err := jetstreamRate(ctx, "nats://"+f.back.NATS.Addr, size, s.JSWindow)
		if err != nil {
			return fmt.Errorf("jetstream phase: %w", err)
		}
		jsRates = append(jsRates, jr)
		e.logf("overhead round %d: fleet %.0f jobs/s, jetstream %.0f msgs/s", round+1, res.Rate(), jr)
	}
	satRate := mean(fleetRates)
	r.ratio("fleet_over_jetstream", ratioOfRounds(fleetRates, jsRates), fmt.Sprintf("echo jobs/s through the fleet over raw JetStream publish+consume+ack msgs/s (%d-byte messages)", size))
	r.atLeast("fleet_over_jetstream", 0.035, "single-job HTTP echo throughput at least 0.035 of raw JetStream's")
	var coldMs, warmMs, readyS []float64
	for _, c := range colds {
		coldMs, warmMs, readyS = append(coldMs, c.cold), append(warmMs, median(c.warm)), append(readyS, c.ready.Seconds())
	}
	r.ratio("cold_over_warm", ratioOfRounds(coldMs, warmMs), "the first echo job on a fresh, ready fleet over the median of the next ones (submit to succeeded, one at a time)")

	// Latency under open-loop load at 80% (the target's) and 90% of
	// saturation.
	pcts := []int{80, 90}
	lat := map[int][]float64{}
	got := map[int][]float64{}
	for range s.Rounds {
		for _, pct := range pcts {
			res, _, err := f.load(ctx, loadSpec{Model: "echo", Inputs: in.paths, ContentType: in.contentType,
				Rate: satRate * float64(pct) / 100, Warmup: s.Warmup, Window: s.LatencyWindow, Seed: uint64(pct)})
			if err != nil {
				return fmt.Errorf("latency phase at %d%%: %w", pct, err)
			}
			lat[pct] = append(lat[pct], res.Latencies...)
			got[pct] = append(got[pct], res.Rate())
		}
	}
	r.figure("fleet_jobs_per_s", satRate, "echo jobs/s, saturated (closed loop, mean of rounds)")
	r.figure("jetstream_msgs_per_s", mean(jsRates), "msgs/s, publish + pull + ack, one stream, same server")
	r.figure("message_bytes", float64(size), "bytes per queue message")
	r.figure("worker_mean_batch", mean(batches), "jobs per inference run, saturated")
	for _, pct := range pcts {
		r.figure(fmt.Sprintf("load%d_jobs_per_s", pct), mean(got[pct]), fmt.Sprintf("jobs/s achieved at %d%% of saturation (open loop)", pct))
		for _, p := range []float64{50, 95, 99} {
			r.figure(fmt.Sprintf("load%d_p%.0f_ms", pct, p), percentile(lat[pct], p), fmt.Sprintf("ms, submit to result at %d%% load", pct))
		}
	}
	r.atMostTarget("load80_p99_ms", 500, "p99 latency at 80% of the saturated rate at most 500 ms")
	per := cpuPerJob(cpu, njobs)
	var all, fleetOnly float64
	for _, k := range sortedKeys(per) {
		r.figure("cpu_us_per_job_"+strings.ReplaceAll(k, " ", "_"), per[k], "CPU µs per job, saturated")
		all += per[k]
		if k != "load generator" {
			fleetOnly += per[k]
		}
	}
	r.figure("cpu_us_per_job_all", all, "CPU µs per job over all processes, the load generator (the fleet's client) included, saturated")
	r.figure("cpu_us_per_job_fleet", fleetOnly, "CPU µs per job over the fleet's processes (producer, scheduler, worker, NATS, Redis, MinIO), saturated")
	r.atMostTarget("cpu_us_per_job_all", 1500, "CPU per echo job over all processes (load generator included, as issue 16 measured its 5.0 ms) at most 1.5 ms")
	r.figure("cold_first_job_ms", mean(coldMs), "ms, the first echo job on a fresh fleet, submit to succeeded (mean of rounds)")
	r.figure("warm_job_ms", mean(warmMs), fmt.Sprintf("ms, the median of the %d jobs after it, one at a time (mean of rounds)", s.WarmJobs))
	r.figure("cold_minus_warm_ms", mean(coldMs)-mean(warmMs), "ms the first job takes beyond a warm one")
	r.atMostTarget("cold_minus_warm_ms", 100, "the first job on a fresh, ready fleet within 100 ms of a warm one")
	r.figure("fleet_ready_s", mean(readyS), "s from starting producer, scheduler and worker at once to every /readyz answering 200 (mean of rounds)")
	r.figure("first_job_after_producer_ready_ms", apiOnly.cold, "ms, the first echo job on a fresh fleet submitted as soon as the producer's /readyz answers 200, the other processes not waited for (one fleet)")
	r.addSection("CPU per job by process", cpuTable(cpu, njobs))
	r.addSection("Each round", roundsTable([]string{"fleet jobs/s", "jetstream msgs/s"}, fleetRates, jsRates))
	r.addSection("Cold first job", coldTable(colds)+fmt.Sprintf("\n\nOne more fresh fleet, its first job submitted as soon as the producer's `/readyz` answered (after %.1f s), the scheduler's and worker's not waited for: %s ms, then %s ms.", apiOnly.ready.Seconds(), fmtVal(apiOnly.cold), fmtList(apiOnly.warm)))

	if s.ProfileWindow > 0 {
		ps, err := e.profileFleet(ctx, f, sat, s.ProfileWindow)
		if err != nil {
			r.note("profiles: " + err.Error())
		} else {
			r.addSection("Where the time goes", whereTimeGoes(per)+"\n\n"+profileMarkdown(ps, per))
		}
	}
	return nil
}

// whereTimeGoes sums up the CPU per job by process in a sentence.
func whereTimeGoes(per map[string]float64) string {
	names := sortedKeys(per)
	sort.SliceStable(names, func(i, j int) bool { return per[names[i]] > per[names[j]] })
	var all float64
	for _, v := range per {
		all += v
	}
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, 100*per[n]/all))
	}
	return fmt.Sprintf("A job costs %.0f µs of CPU in all; by process: %s. On a machine with N cores the fleet's ceiling is about N × 10⁶ / (µs per job) jobs/s, whatever the queue's own rate.", all, strings.Join(parts, ", "))
}

// profileFleet profiles every process of f (and the load generator)
// while a saturated closed loop runs.
func (e *env) profileFleet(ctx context.Context, f *fleet, spec loadSpec, d time.Duration) ([]profile, error) {
	spec.Target, spec.URL, spec.Keys = "fleet", f.URL, map[string]string{"standard": f.keys["standard"]}
	addrs := map[string]string{}
	if u := strings.TrimPrefix(f.URL, "http://"); u != "" {
		addrs["producer"] = u
	}
	if a, err := opsAddr(f.Scheduler.Log); err == nil {
		addrs["scheduler"] = a
	}
	if a, err := opsAddr(f.Workers[0].Log); err == nil {
		addrs["worker"] = a
	}
	bins := map[string]string{}
	for _, n := range []string{"producer", "scheduler", "worker"} {
		bins[n] = filepath.Join(e.bin, n)
	}
	return e.profileLoad(ctx, spec, f.procs(), addrs, bins, d)
}

// profileLoad profiles procs (and the load generator) for d while the load
// of spec runs: the load runs until the profiles are taken, however long
// perf takes to start, then is stopped.
func (e *env) profileLoad(ctx context.Context, spec loadSpec, procs map[string]int, addrs, bins map[string]string, d time.Duration) ([]profile, error) {
	dir, err := e.subdir("profile-load")
	if err != nil {
		return nil, err
	}
	spec.Warmup, spec.Window = e.size.Warmup, d+5*time.Minute
	spec.Profile = filepath.Join(dir, "load.pprof")
	c, err := e.startLoad(spec)
	if err != nil {
		return nil, err
	}
	sleepCtx(ctx, e.size.Warmup+500*time.Millisecond)
	t0 := time.Now()
	ps := e.profileProcs(ctx, procs, addrs, bins, d)
	e.logf("profiles taken in %s", time.Since(t0).Round(100*time.Millisecond))
	c.stop(e.size.Drain)
	exe, _ := os.Executable()
	top, err := pprofTopFile(ctx, exe, spec.Profile)
	ps = append(ps, profile{proc: "load generator", how: "pprof", top: top, err: err})
	return ps, nil
}
