package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/tenants"
)

// fleet is one fleet on its own NATS and Redis (and its own bucket of the
// shared MinIO), with the API keys of its tenants by tier.
type fleet struct {
	*fleettest.Fleet
	e    *env
	back *fleettest.Backing
	dir  string
	keys map[string]string // tier -> API key
	env  []string          // worker environment of the current worker
}

// fleetOpts shape a fleet.
type fleetOpts struct {
	name      string
	models    []string                 // the worker serves these only
	workerEnv []string                 // e.g. INFERQ_MAX_BATCH=1
	env       []string                 // every process
	tiers     map[string]time.Duration // tier deadlines (nil: the defaults)
	natsNodes int                      // NATS servers (0, 1: one; 3: a cluster with R3)
	// redisCluster puts the fleet on a three-primary Redis Cluster (a
	// replica each) instead of one Redis.
	redisCluster bool
}

func (e *env) startFleet(o fleetOpts) (*fleet, error) {
	if err := e.fleetParts(); err != nil {
		return nil, err
	}
	dir, err := e.subdir(o.name)
	if err != nil {
		return nil, err
	}
	bucket := fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(o.name, "_", "-"), time.Now().UnixNano()%1e9)
	var back *fleettest.Backing
	if o.redisCluster {
		back, err = fleettest.StartBackingRedisCluster(dir, e.minio, bucket)
	} else {
		back, err = fleettest.StartBackingNATS(dir, e.minio, bucket, max(o.natsNodes, 1))
	}
	if err != nil {
		return nil, err
	}
	f := &fleet{e: e, back: back, dir: dir, keys: map[string]string{}}
	tf, err := f.writeTenants(o.tiers)
	if err != nil {
		back.Stop()
		return nil, err
	}
	env := append([]string{
		"INFERQ_TENANTS_FILE=" + tf,
		// The harness measures; debug logs of every job would be part of
		// what it measures.
		"INFERQ_LOG_LEVEL=info",
	}, o.env...)
	f.env = append([]string{"INFERQ_MODELS=" + strings.Join(o.models, ",")}, o.workerEnv...)
	f.Fleet, err = fleettest.StartFleet(fleettest.Options{
		Dir: dir, Bin: e.bin, ModelsDir: e.models, Backing: back, Workers: 1,
		Env: env, WorkerEnv: f.env,
	})
	if err != nil {
		back.Stop()
		return nil, fmt.Errorf("start fleet %s: %w (logs in %s)", o.name, err, dir)
	}
	return f, nil
}

// writeTenants writes a tenants file of one tenant per tier with keys the
// harness keeps; the fleet's processes get it through INFERQ_TENANTS_FILE,
// which wins over the harness's default file.
func (f *fleet) writeTenants(tiers map[string]time.Duration) (string, error) {
	var b strings.Builder
	if len(tiers) > 0 {
		b.WriteString("tiers:\n")
		for _, t := range sortedKeys(tiers) {
			fmt.Fprintf(&b, "  %s:\n    deadline: %s\n", t, tiers[t])
		}
	}
	b.WriteString("tenants:\n")
	for _, t := range []string{"premium", "standard", "bulk"} {
		key, stored := tenants.NewKey()
		f.keys[t] = key
		fmt.Fprintf(&b, "  - name: bench-%s\n    tier: %s\n    api_keys: [%q]\n    max_queued: 1000000\n", t, t, stored)
	}
	p := filepath.Join(f.dir, "bench-tenants.yaml")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

func (f *fleet) stop() {
	f.Fleet.Stop()
	f.back.Stop()
}

// setWorker replaces the fleet's workers with one worker with extra
// environment (on top of the fleet's worker environment).
func (f *fleet) setWorker(extra ...string) error {
	for _, w := range f.Workers {
		w.Stop(15 * time.Second)
	}
	f.Workers = nil
	_, err := f.StartWorker(extra...)
	return err
}

// s3 is the fleet's bucket, for the peer.
func (f *fleet) s3() blob.Config {
	return blob.Config{
		Endpoint: "http://" + f.back.MinIO.Addr, AccessKey: fleettest.MinIOUser, SecretKey: fleettest.MinIOPassword,
		Bucket: f.back.Bucket, Region: "us-east-1",
	}
}

// procs are the processes whose CPU the harness accounts, by name.
func (f *fleet) procs() map[string]int {
	m := map[string]int{
		"producer": f.Producer.Cmd.Process.Pid, "scheduler": f.Scheduler.Cmd.Process.Pid,
		"minio": f.back.MinIO.Cmd.Process.Pid,
	}
	if c := f.back.RedisCluster; c != nil {
		for i, n := range c.Nodes {
			m[fmt.Sprintf("redis-server %d", i+1)] = n.Cmd.Process.Pid
		}
	} else {
		m["redis-server"] = f.back.Redis.Cmd.Process.Pid
	}
	if c := f.back.NATSCluster; c != nil {
		for _, nd := range c.Nodes {
			if nd.Proc != nil {
				m["nats-server "+nd.Name] = nd.Proc.Cmd.Process.Pid
			}
		}
	} else {
		m["nats-server"] = f.back.NATS.Cmd.Process.Pid
	}
	for i, w := range f.Workers {
		name := "worker"
		if i > 0 {
			name = fmt.Sprintf("worker-%d", i+1)
		}
		m[name] = w.Cmd.Process.Pid
	}
	return m
}

// load runs one load phase against the fleet from a helper process.
func (f *fleet) load(ctx context.Context, spec loadSpec) (*loadResult, *cpuUse, error) {
	spec.Target, spec.URL, spec.Keys = "fleet", f.URL, f.keys
	if len(spec.Mix) == 0 {
		spec.Keys = map[string]string{"standard": f.keys["standard"]}
	}
	return f.e.runLoad(ctx, spec, f.procs())
}

// startLoad starts a load generator.
func (e *env) startLoad(spec loadSpec) (*child, error) {
	if spec.Drain == 0 {
		spec.Drain = e.size.Drain
	}
	dir, err := e.subdir("load")
	if err != nil {
		return nil, err
	}
	return spawn(modeLoad, spec, filepath.Join(dir, "load.log"))
}

// runLoad runs a load generator to its end, accounts the CPU of procs
// (and of the generator) meanwhile, and returns what it saw.
func (e *env) runLoad(ctx context.Context, spec loadSpec, procs map[string]int) (*loadResult, *cpuUse, error) {
	before := readCPU(procs)
	c, err := e.startLoad(spec)
	if err != nil {
		return nil, nil, err
	}
	var res loadResult
	werr := c.wait(ctx, &res)
	after := readCPU(procs)
	if werr != nil {
		return nil, nil, werr
	}
	use := after.minus(before)
	use.ticks["load generator"] = childCPU(c)
	if res.Completed == 0 {
		return &res, use, fmt.Errorf("no job completed (failed %d, errors %v)", res.Failed, res.Errors)
	}
	return &res, use, nil
}

// metrics scrapes a Prometheus text endpoint into sums by metric name and
// label set (the raw line's left side).
func scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out, sc.Err()
}

// opsAddr reads the address a service announced in its JSON log ("...
// listening" with addr).
func opsAddr(logPath string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		for _, l := range strings.Split(string(b), "\n") {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(l), &rec) == nil && rec.Addr != "" && strings.Contains(rec.Msg, "listening") {
				return rec.Addr, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("no listening address in %s", logPath)
}

// batchStats reads the worker's batch-size histogram for model: count of
// runs and jobs in them.
func batchStats(addr, model string) (runs, jobs float64, err error) {
	m, err := scrape(addr)
	if err != nil {
		return 0, 0, err
	}
	lbl := `{model="` + model + `"}`
	return m["inferq_worker_batch_size_count"+lbl], m["inferq_worker_batch_size_sum"+lbl], nil
}

// meanBatch is the worker's mean batch size over a phase: call it before
// and after.
type batchMeter struct {
	addr, model string
	runs, jobs  float64
}

func (f *fleet) batchMeter(model string) (*batchMeter, error) {
	addr, err := opsAddr(f.Workers[len(f.Workers)-1].Log)
	if err != nil {
		return nil, err
	}
	b := &batchMeter{addr: addr, model: model}
	b.runs, b.jobs, err = batchStats(addr, model)
	return b, err
}

// since returns the mean batch size since the meter was made (or last
// read), and restarts it.
func (b *batchMeter) since() float64 {
	runs, jobs, err := batchStats(b.addr, b.model)
	if err != nil {
		return 0
	}
	m := div(jobs-b.jobs, runs-b.runs)
	b.runs, b.jobs = runs, jobs
	return m
}
