// Package bench is inferq's benchmark harness: it starts its own NATS,
// Redis and MinIO like the tests, runs the fleet and what the fleet is
// compared with (ONNX Runtime alone, the JetStream ceiling, a hand-built
// asynq pipeline, the fleet without batching, the scheduling policies) side
// by side, alternating A B A B, and reports ratios first, then figures.
// cmd/bench is its command; its test runs every scenario once at a tiny
// size so that the harness keeps working, and asserts no timings.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/ort"
)

// Size is how long and how hard each scenario measures.
type Size struct {
	Name string
	// Rounds is how many times a comparison alternates its sides.
	Rounds int
	// Warmup and Window are one closed-loop phase: warm-up, then the
	// measured window.
	Warmup, Window time.Duration
	// Concurrency is the closed loop's jobs in flight.
	Concurrency int
	// Drain bounds the wait for the jobs in flight after a phase.
	Drain time.Duration

	// ort-raw
	RawRounds int
	RawSlice  time.Duration // per model, batch size and round
	RawCases  []rawCase

	// fleet-vs-raw: the model, and the raw slice beside each fleet phase.
	FleetModel string
	// overhead
	JSWindow      time.Duration
	LatencyWindow time.Duration
	ProfileWindow time.Duration // 0: no profiles
	// ProfileMisses profiles fleet-vs-raw and asynq-peer too (the
	// scenarios whose targets are at risk), not only overhead.
	ProfileMisses bool
	// WarmJobs is how many single echo jobs follow the cold first one on
	// a fresh fleet, one at a time.
	WarmJobs int
	// ingest
	IngestFiles int           // files in each batch (and messages in the JetStream publish)
	IngestDrain time.Duration // bounds the wait for a batch to be done
	// asynq-peer
	PeerModels []string
	// PeerInlineModels also get the peer that carries the input in the
	// asynq task's payload (small inputs only).
	PeerInlineModels []string
	PeerTune         []int // asynq concurrencies tried
	TuneWindow       time.Duration
	// batching
	BatchingModels []string
	// sla
	SimScale    float64 // fraction of the standard traces' length
	SLAModel    string
	SLAArrivals time.Duration
	SLATiers    map[string]time.Duration
	// scale-out
	ScaleOutModels []string
	// ocr-peer: pages in each set.
	OCRPages int
}

type rawCase struct {
	Model   string
	Batches []int
}

// Full is the size `make bench` runs: about 15 minutes on a 2-core machine.
func Full() Size {
	return Size{
		Name: "full", Rounds: 2, Warmup: 3 * time.Second, Window: 10 * time.Second,
		Concurrency: 64, Drain: 60 * time.Second,
		RawRounds: 3, RawSlice: time.Second,
		RawCases: []rawCase{
			{"resnet18", []int{1, 8, 32, 64}},
			{"digits", []int{1, 8, 32, 64}},
			{"echo", []int{1, 8, 32, 64}},
		},
		FleetModel: "resnet18",
		JSWindow:   5 * time.Second, LatencyWindow: 10 * time.Second, ProfileWindow: 6 * time.Second,
		ProfileMisses: true, WarmJobs: 5,
		IngestFiles: 10000, IngestDrain: 5 * time.Minute,
		PeerModels: []string{"digits", "resnet18"}, PeerInlineModels: []string{"digits"},
		PeerTune: []int{1, 2, 4, 8}, TuneWindow: 5 * time.Second,
		BatchingModels: []string{"digits", "resnet18"},
		SimScale:       1,
		SLAModel:       "resnet18", SLAArrivals: 30 * time.Second,
		SLATiers:       map[string]time.Duration{"premium": 4 * time.Second, "standard": 8 * time.Second, "bulk": 90 * time.Second},
		ScaleOutModels: []string{"echo", "digits"},
		OCRPages:       12,
	}
}

// Tiny runs every scenario once, in seconds: for the harness's own test.
func Tiny() Size {
	return Size{
		Name: "tiny", Rounds: 1, Warmup: 300 * time.Millisecond, Window: time.Second,
		Concurrency: 8, Drain: 20 * time.Second,
		RawRounds: 1, RawSlice: 100 * time.Millisecond,
		RawCases:   []rawCase{{"digits", []int{1, 8}}, {"echo", []int{1, 8}}},
		FleetModel: "digits",
		JSWindow:   500 * time.Millisecond, LatencyWindow: time.Second, ProfileWindow: time.Second,
		WarmJobs:    3,
		IngestFiles: 300, IngestDrain: time.Minute,
		PeerModels: []string{"digits"}, PeerInlineModels: []string{"digits"},
		PeerTune: []int{1, 2}, TuneWindow: 700 * time.Millisecond,
		BatchingModels: []string{"digits"},
		SimScale:       0.02,
		SLAModel:       "digits", SLAArrivals: 2 * time.Second,
		SLATiers:       map[string]time.Duration{"premium": 2 * time.Second, "standard": 5 * time.Second, "bulk": 30 * time.Second},
		ScaleOutModels: []string{"echo"},
		OCRPages:       1,
	}
}

// Config is one run of the harness.
type Config struct {
	Size      Size
	Scenarios []string // empty: all
	// Log receives progress lines (nil: discarded).
	Log io.Writer
	// Command is how the run was started, for the report.
	Command string
}

// Scenario is one benchmark.
type Scenario struct {
	Name  string
	Title string
	About string
	run   func(ctx context.Context, e *env, r *Result) error
}

// Scenarios lists every scenario in run order.
func Scenarios() []Scenario {
	return []Scenario{
		{"ort-raw", "ONNX Runtime alone, in process", aboutORTRaw, runORTRaw},
		{"fleet-vs-raw", "the whole fleet against ONNX Runtime alone", aboutFleetRaw, runFleetRaw},
		{"overhead", "the fleet's own cost per job, beside JetStream's ceiling", aboutOverhead, runOverhead},
		{"ingest", "a bulk batch of small files, beside JetStream's publish rate", aboutIngest, runIngest},
		{"asynq-peer", "inferq against a hand-built asynq pipeline", aboutPeer, runPeer},
		{"batching", "adaptive batching against max_batch 1", aboutBatching, runBatching},
		{"sla", "scheduling policies under overload: simulator and real fleet", aboutSLA, runSLA},
		{"scale-out", "a three-node NATS cluster with R3 against one node with R1", aboutScaleOut, runScaleOut},
		{"documents", "a scanned PDF against its pages as image jobs", aboutDocuments, runDocuments},
		{"ocr-peer", "OCR against tesseract: CER by page set and pages/s", aboutOCRPeer, runOCRPeer},
	}
}

// ScenarioNames lists the scenarios' names.
func ScenarioNames() []string {
	var out []string
	for _, s := range Scenarios() {
		out = append(out, s.Name)
	}
	return out
}

// Run runs the chosen scenarios and returns the report. A scenario that
// fails is reported as failed and the others still run; the error says
// which failed.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	var chosen []Scenario
	for _, s := range Scenarios() {
		if len(cfg.Scenarios) == 0 || slices.Contains(cfg.Scenarios, s.Name) {
			chosen = append(chosen, s)
		}
	}
	for _, n := range cfg.Scenarios {
		if !slices.Contains(ScenarioNames(), n) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", n, strings.Join(ScenarioNames(), ", "))
		}
	}
	rep := &Report{Cores: runtime.NumCPU(), started: time.Now()}
	rep.Date = rep.started.UTC().Format("2006-01-02")
	e, err := newEnv(cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep.machine = e.describe(cfg)
	for _, s := range chosen {
		r := newResult(s.Name, s.Title, s.About)
		e.logf("== %s", s.Name)
		t0 := time.Now()
		r.err = s.run(ctx, e, r)
		r.elapsed = time.Since(t0)
		if r.err != nil {
			e.logf("%s failed: %v", s.Name, r.err)
		}
		e.logf("== %s done in %s", s.Name, r.elapsed.Round(time.Second))
		rep.add(r)
		if ctx.Err() != nil {
			break
		}
	}
	rep.finished = time.Now()
	rep.machine = append(rep.machine, fmt.Sprintf("whole run: %s", rep.finished.Sub(rep.started).Round(time.Second)))
	if f := rep.Failed(); len(f) > 0 {
		return rep, fmt.Errorf("scenarios failed: %s", strings.Join(f, ", "))
	}
	return rep, ctx.Err()
}

// env is what the scenarios share: a work directory, the fleet's
// binaries, one MinIO (a bucket per fleet), ONNX Runtime in this process.
type env struct {
	cfg    Config
	size   Size
	dir    string
	bin    string
	models string
	lib    string
	minio  *fleettest.Server
	seq    int
	mu     sync.Mutex
	inputs map[string]inputSet
	perf   string // perf binary, if profiling works here

	partsOnce sync.Once
	partsErr  error
}

func newEnv(cfg Config) (*env, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	e := &env{cfg: cfg, size: cfg.Size, models: fleettest.ModelsDir(), inputs: map[string]inputSet{}}
	var err error
	if e.lib, err = fleettest.ORTLib(); err != nil {
		return nil, err
	}
	if err := ort.Init(e.lib); err != nil {
		return nil, err
	}
	for _, m := range []string{"echo", "digits", "resnet18"} {
		if _, err := os.Stat(filepath.Join(e.models, m)); err != nil {
			return nil, fmt.Errorf("model %s not in %s: run `make deps`", m, e.models)
		}
	}
	if e.dir, err = os.MkdirTemp("", "inferq-bench-"); err != nil {
		return nil, err
	}
	e.bin = filepath.Join(e.dir, "bin")
	e.perf = findPerf()
	return e, nil
}

// fleetParts builds the fleet's binaries and starts the shared MinIO, once,
// when the first scenario needs a fleet.
func (e *env) fleetParts() error {
	e.partsOnce.Do(func() {
		e.logf("building the fleet's binaries")
		if e.partsErr = fleettest.BuildBinaries(e.bin); e.partsErr != nil {
			return
		}
		e.logf("starting MinIO")
		if e.minio, e.partsErr = fleettest.StartMinIO(filepath.Join(e.dir, "s3")); e.partsErr != nil {
			e.partsErr = fmt.Errorf("%w (run `make deps`)", e.partsErr)
		}
	})
	return e.partsErr
}

func (e *env) close() {
	if e.minio != nil {
		e.minio.Stop(5 * time.Second)
	}
	if e.dir != "" && os.Getenv("INFERQ_BENCH_KEEP") == "" {
		_ = os.RemoveAll(e.dir)
	}
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Log, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// subdir makes a fresh directory for one fleet or helper.
func (e *env) subdir(name string) (string, error) {
	e.mu.Lock()
	e.seq++
	n := e.seq
	e.mu.Unlock()
	d := filepath.Join(e.dir, fmt.Sprintf("%02d-%s", n, name))
	return d, os.MkdirAll(d, 0o755)
}

func (e *env) describe(cfg Config) []string {
	var out []string
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				out = append(out, "cpu: "+strings.TrimSpace(v))
				break
			}
		}
	}
	out = append(out, "go: "+runtime.Version(), "onnx runtime: "+ort.Version())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			out = append(out, fmt.Sprintf("load average at start: %s %s %s (the machine is shared; see the ratios)", f[0], f[1], f[2]))
		}
	}
	if c, err := exec.Command("git", "-C", fleettest.RepoRoot(), "rev-parse", "--short", "HEAD").Output(); err == nil {
		line := "commit: " + strings.TrimSpace(string(c))
		if st, err := exec.Command("git", "-C", fleettest.RepoRoot(), "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			line += fmt.Sprintf(" with %d files changed in the working tree", len(strings.Split(strings.TrimSpace(string(st)), "\n")))
		}
		out = append(out, line)
	}
	out = append(out, "size: "+cfg.Size.Name)
	if cfg.Command != "" {
		out = append(out, "command: `"+cfg.Command+"`")
	}
	return out
}

// threads is ONNX Runtime's intra-op pool size the worker picks with one
// instance per model: every core the process sees.
func threads() int { return max(1, runtime.GOMAXPROCS(0)) }

var errNoDeadlinePolicy = errors.New("the scheduler has no INFERQ_POLICY setting yet")
