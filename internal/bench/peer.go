package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/models"
	"github.com/inferq/inferq/internal/ort"
)

const aboutPeer = "The pipeline a team would write by hand with a Redis task queue, in two forms: with the input in S3 (the client puts it in the same MinIO and enqueues one asynq task naming it; the handler reads it back), and with the input in the task's payload (what a team would do for small inputs; `asynq_inline`, on the models with small inputs). Either way the client blocks on a Redis list; an asynq server in its own process runs a handler that prepares the input with the same preprocessing code as the fleet, runs the same ONNX model one job at a time, writes the result to Redis and pushes to the list. Same inputs, same closed-loop load (the same jobs in flight, from a load generator in another process), same cores. Each peer's concurrency (asynq workers, with as many ONNX Runtime sessions as cores allow and the cores split between them) is tuned first: each setting runs a short phase and the best is kept. Then inferq and the peers alternate, A B C A B C."

// peerSpec configures the peer's worker process.
type peerSpec struct {
	Redis       string      `json:"redis"`
	S3          blob.Config `json:"s3"`
	ModelsDir   string      `json:"models_dir"`
	ORTLib      string      `json:"ort_lib"`
	Model       string      `json:"model"`
	Concurrency int         `json:"concurrency"`
	Instances   int         `json:"instances"`
	Threads     int         `json:"threads"`
}

// runPeerWorker is the asynq server of the peer: it prints "ready" once
// it serves, and stops when ctx ends.
func runPeerWorker(ctx context.Context, spec peerSpec, out io.Writer) error {
	if err := ort.Init(spec.ORTLib); err != nil {
		return err
	}
	reg, err := models.Open(spec.ModelsDir, []string{spec.Model}, ort.Options{IntraOpThreads: spec.Threads}, spec.Instances, nil)
	if err != nil {
		return err
	}
	defer reg.Close()
	m, release, err := reg.Acquire(spec.Model)
	if err != nil {
		return err
	}
	defer release()
	store, err := blob.Open(spec.S3)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: spec.Redis, PoolSize: 2*spec.Concurrency + 16})
	defer rdb.Close()
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: spec.Concurrency,
		// Idle workers look for work every 10 ms rather than every second:
		// what a team tuning for latency would set.
		TaskCheckInterval: 10 * time.Millisecond,
		LogLevel:          asynq.WarnLevel,
		ShutdownTimeout:   5 * time.Second,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(peerTask, func(ctx context.Context, t *asynq.Task) error {
		var p peerPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("payload: %v: %w", err, asynq.SkipRetry)
		}
		status := "ok"
		data := p.Data
		if p.Key != "" {
			var err error
			if data, err = store.Get(ctx, p.Key, 32<<20); err != nil {
				return err
			}
		}
		var result json.RawMessage
		s, err := m.Prepare(models.Input{Data: data, ContentType: p.ContentType})
		if err == nil {
			var outs []models.Outcome
			if outs, err = m.Run([]models.Sample{s}); err == nil {
				result, err = outs[0].Result, outs[0].Err
			}
		}
		if err != nil {
			status = "error: " + err.Error()
			result, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		pipe := rdb.TxPipeline()
		pipe.Set(ctx, peerResult+p.ID, []byte(result), time.Hour)
		pipe.RPush(ctx, peerDonePrefix+p.ID, status)
		pipe.Expire(ctx, peerDonePrefix+p.ID, 10*time.Minute)
		_, err = pipe.Exec(ctx)
		return err
	})
	if err := srv.Start(mux); err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// peerSetting is one way to run the peer's worker.
type peerSetting struct{ concurrency, instances, threads int }

func (p peerSetting) String() string {
	return fmt.Sprintf("concurrency %d (%d sessions x %d threads)", p.concurrency, p.instances, p.threads)
}

func settingFor(c int) peerSetting {
	inst := min(c, threads())
	return peerSetting{c, inst, max(1, threads()/inst)}
}

// startPeer starts the peer's worker for model next to fleet f (its
// Redis and bucket).
func (e *env) startPeer(f *fleet, model string, ps peerSetting) (*child, error) {
	dir, err := e.subdir("peer-worker")
	if err != nil {
		return nil, err
	}
	c, err := spawn(modePeer, peerSpec{
		Redis: f.back.Redis.Addr, S3: f.s3(), ModelsDir: e.models, ORTLib: e.lib, Model: model,
		Concurrency: ps.concurrency, Instances: ps.instances, Threads: ps.threads,
	}, filepath.Join(dir, "peer.log"))
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(60 * time.Second); err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	return c, nil
}

// peerKind is one of the hand-built pipelines inferq is compared with.
type peerKind struct {
	name   string // the prefix of its ratios and figures
	title  string
	inline bool // the input rides in the task's payload, not in S3
}

var (
	peerS3     = peerKind{"asynq", "the asynq pipeline (inputs in S3)", false}
	peerInline = peerKind{"asynq_inline", "the asynq pipeline (inputs in the task)", true}
)

// peerProcs are the processes the peer of kind k runs on.
func (f *fleet) peerProcs(w *child, k peerKind) map[string]int {
	procs := map[string]int{"peer worker": w.pid(), "redis-server": f.back.Redis.Cmd.Process.Pid}
	if !k.inline {
		procs["minio"] = f.back.MinIO.Cmd.Process.Pid
	}
	return procs
}

// peerPhase runs one closed-loop phase against the peer, its worker
// started for the phase and stopped after.
func (e *env) peerPhase(ctx context.Context, f *fleet, model string, k peerKind, ps peerSetting, spec loadSpec) (*loadResult, *cpuUse, error) {
	w, err := e.startPeer(f, model, ps)
	if err != nil {
		return nil, nil, err
	}
	defer w.stop(10 * time.Second)
	spec.Target = "peer"
	spec.Peer = &peerConn{Redis: f.back.Redis.Addr, S3: f.s3(), Inline: k.inline}
	return e.runLoad(ctx, spec, f.peerProcs(w, k))
}

// profilePeer profiles the peer's processes under its load.
func (e *env) profilePeer(ctx context.Context, f *fleet, model string, k peerKind, ps peerSetting, spec loadSpec, d time.Duration) ([]profile, error) {
	w, err := e.startPeer(f, model, ps)
	if err != nil {
		return nil, err
	}
	defer w.stop(10 * time.Second)
	spec.Target = "peer"
	spec.Peer = &peerConn{Redis: f.back.Redis.Addr, S3: f.s3(), Inline: k.inline}
	return e.profileLoad(ctx, spec, f.peerProcs(w, k), nil, nil, d)
}

func runPeer(ctx context.Context, e *env, r *Result) error {
	s := e.size
	// Issue 16: on digits (pipeline-bound) inferq's batching should win
	// twice over; on resnet18 (compute-bound) it should at least not lose.
	targets := map[string]float64{"digits": 2, "resnet18": 1}
	for _, model := range s.PeerModels {
		if err := peerModel(ctx, e, r, model, targets[model]); err != nil {
			return fmt.Errorf("%s: %w", model, err)
		}
	}
	return nil
}

func peerModel(ctx context.Context, e *env, r *Result, model string, want float64) error {
	s := e.size
	in, err := e.inputsFor(model)
	if err != nil {
		return err
	}
	f, err := e.startFleet(fleetOpts{name: "peer-" + model, models: []string{model}})
	if err != nil {
		return err
	}
	defer f.stop()
	spec := loadSpec{Model: model, Inputs: in.paths, ContentType: in.contentType, Concurrency: s.Concurrency, Warmup: s.Warmup, Window: s.Window}
	kinds := []peerKind{peerS3}
	if slices.Contains(s.PeerInlineModels, model) {
		kinds = append(kinds, peerInline)
	}

	// Tune each peer: the best of its concurrency settings, by throughput.
	best := map[string]peerSetting{}
	for _, k := range kinds {
		b, bestRate := settingFor(s.PeerTune[0]), -1.0
		var tuneRows string
		for _, c := range s.PeerTune {
			ps := settingFor(c)
			ts := spec
			ts.Warmup, ts.Window = s.Warmup/2, s.TuneWindow
			res, _, err := e.peerPhase(ctx, f, model, k, ps, ts)
			if err != nil {
				return fmt.Errorf("%s tuning at %v: %w", k.name, ps, err)
			}
			tuneRows += fmt.Sprintf("| %d | %d | %d | %s | %s |\n", ps.concurrency, ps.instances, ps.threads, fmtVal(res.Rate()), fmtVal(res.P99))
			e.logf("asynq-peer %s tuning %s: %v: %.1f jobs/s", model, k.name, ps, res.Rate())
			if res.Rate() > bestRate {
				b, bestRate = ps, res.Rate()
			}
		}
		best[k.name] = b
		r.addSection(model+": tuning "+k.title, "| asynq concurrency | ORT sessions | threads each | jobs/s | p99 ms |\n|---:|---:|---:|---:|---:|\n"+tuneRows+
			fmt.Sprintf("\nKept: %v. Short phases (%s each), before the comparison.", b, s.TuneWindow))
	}

	var fr, fp99 []float64
	var fcpu []*cpuUse
	var fj []float64
	pr, pp99, pj := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	pcpu := map[string][]*cpuUse{}
	for round := range s.Rounds {
		res, use, err := f.load(ctx, spec)
		if err != nil {
			return fmt.Errorf("fleet phase: %w", err)
		}
		fr, fp99, fcpu, fj = append(fr, res.Rate()), append(fp99, res.P99), append(fcpu, use), append(fj, float64(res.Completed))
		line := fmt.Sprintf("asynq-peer %s round %d: inferq %.1f jobs/s p99 %.0f ms", model, round+1, res.Rate(), res.P99)
		for _, k := range kinds {
			pres, puse, err := e.peerPhase(ctx, f, model, k, best[k.name], spec)
			if err != nil {
				return fmt.Errorf("%s phase: %w", k.name, err)
			}
			pr[k.name], pp99[k.name] = append(pr[k.name], pres.Rate()), append(pp99[k.name], pres.P99)
			pcpu[k.name], pj[k.name] = append(pcpu[k.name], puse), append(pj[k.name], float64(pres.Completed))
			line += fmt.Sprintf(", %s %.1f jobs/s p99 %.0f ms", k.name, pres.Rate(), pres.P99)
		}
		e.logf("%s", line)
	}
	if s.ProfileMisses && s.ProfileWindow > 0 && want > 1 {
		// Where each side spends its CPU, on the model whose cost is the
		// pipeline's (the peer with inputs in S3 only: the inline one's
		// CPU table below says enough).
		ps, err := e.profileFleet(ctx, f, spec, s.ProfileWindow)
		if err != nil {
			r.note("profiles: " + err.Error())
		} else {
			r.addSection(model+": where inferq's time goes", whereTimeGoes(cpuPerJob(fcpu, fj))+"\n\n"+profileMarkdown(ps, cpuPerJob(fcpu, fj)))
		}
		ps, err = e.profilePeer(ctx, f, model, peerS3, best[peerS3.name], spec, s.ProfileWindow)
		if err != nil {
			r.note("peer profiles: " + err.Error())
		} else {
			per := cpuPerJob(pcpu[peerS3.name], pj[peerS3.name])
			r.addSection(model+": where the asynq pipeline's time goes", whereTimeGoes(per)+"\n\n"+profileMarkdown(ps, per))
		}
	}
	for _, k := range kinds {
		name := "inferq_over_" + k.name + "_" + model
		r.ratio(name, ratioOfRounds(fr, pr[k.name]), fmt.Sprintf("%s: inferq completed jobs/s over %s's, same load", model, k.title))
		r.ratio(k.name+"_over_inferq_p99_"+model, ratioOfRounds(pp99[k.name], fp99), fmt.Sprintf("%s: %s's p99 latency over inferq's (above 1: inferq is faster)", model, k.title))
		if want > 0 && k == peerS3 {
			why := fmt.Sprintf("inferq at least %gx %s on %s", want, k.title, model)
			if want == 1 {
				why = fmt.Sprintf("inferq no slower than %s on %s", k.title, model)
			}
			r.atLeast(name, want, why)
		}
	}
	r.figure("inferq_jobs_per_s_"+model, mean(fr), "completed jobs/s (mean of rounds)")
	for _, k := range kinds {
		r.figure(k.name+"_jobs_per_s_"+model, mean(pr[k.name]), "completed jobs/s (mean of rounds), "+k.title)
	}
	r.figure("inferq_p99_ms_"+model, mean(fp99), "ms, submit to result")
	for _, k := range kinds {
		r.figure(k.name+"_p99_ms_"+model, mean(pp99[k.name]), "ms, submit to result, "+k.title)
	}
	for _, k := range kinds {
		r.figure(k.name+"_concurrency_"+model, float64(best[k.name].concurrency), "asynq workers kept by tuning, "+k.title)
	}
	heads := []string{"inferq jobs/s"}
	cols := [][]float64{fr}
	for _, k := range kinds {
		heads, cols = append(heads, k.name+" jobs/s"), append(cols, pr[k.name])
	}
	heads, cols = append(heads, "inferq p99 ms"), append(cols, fp99)
	for _, k := range kinds {
		heads, cols = append(heads, k.name+" p99 ms"), append(cols, pp99[k.name])
	}
	r.addSection(model+": each round", roundsTable(heads, cols...))
	r.addSection(model+": CPU per job, inferq", cpuTable(fcpu, fj))
	for _, k := range kinds {
		r.addSection(model+": CPU per job, "+k.title, cpuTable(pcpu[k.name], pj[k.name]))
	}
	return nil
}
