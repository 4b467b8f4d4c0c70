package fleettest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/tenants"
)

// Commands the harness builds and runs.
var Commands = []string{"producer", "scheduler", "worker", "inferq"}

// BuildBinaries builds the fleet's commands into dir.
func BuildBinaries(dir string) error {
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, c := range Commands {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// Backing holds the three backing servers.
type Backing struct {
	// NATS is the single NATS server, nil when NATSCluster is set.
	NATS, Redis, MinIO *Server
	// NATSCluster replaces NATS with a cluster; streams and buckets then
	// get as many replicas as it has nodes (INFERQ_JS_REPLICAS).
	NATSCluster *NATSCluster
	// RedisCluster replaces Redis with a Redis Cluster (three primaries,
	// a replica each).
	RedisCluster *RedisCluster
	// RedisSentinel replaces Redis with a primary, a replica and three
	// Sentinels.
	RedisSentinel *SentinelSet
	Bucket        string
}

// RedisURL is b's INFERQ_REDIS_URL: the single node's, or the cluster's
// in go-redis's cluster form.
func (b *Backing) RedisURL() string {
	if b.RedisCluster != nil {
		return b.RedisCluster.URL()
	}
	if b.RedisSentinel != nil {
		return b.RedisSentinel.URL()
	}
	return "redis://" + b.Redis.Addr + "/0"
}

// NATSURL is the URL a client of b's NATS dials: every node's, comma
// separated, for a cluster.
func (b *Backing) NATSURL() string {
	if b.NATSCluster != nil {
		return b.NATSCluster.URL()
	}
	return "nats://" + b.NATS.Addr
}

// Env is the INFERQ_* configuration that points a process at b.
func (b *Backing) Env() []string {
	env := []string{
		"INFERQ_NATS_URL=" + b.NATSURL(),
		"INFERQ_REDIS_URL=" + b.RedisURL(),
		"INFERQ_S3_ENDPOINT=http://" + b.MinIO.Addr,
		"INFERQ_S3_ACCESS_KEY=" + MinIOUser,
		"INFERQ_S3_SECRET_KEY=" + MinIOPassword,
		"INFERQ_S3_BUCKET=" + b.Bucket,
	}
	if b.NATSCluster != nil {
		env = append(env, fmt.Sprintf("INFERQ_JS_REPLICAS=%d", min(len(b.NATSCluster.Nodes), 5)))
	}
	return env
}

// Tenant is a tenant the harness made, with its clear API key.
type Tenant struct {
	Name, Tier, Key, WebhookSecret string
}

// Options shape a fleet.
type Options struct {
	Dir       string // logs and files
	Bin       string // where BuildBinaries put the commands
	ModelsDir string
	Backing   *Backing
	Workers   int
	// Env is added to every process's environment (e.g. INFERQ_ACK_WAIT).
	Env []string
	// WorkerEnv is added to workers only.
	WorkerEnv []string
	// Tenants to create; default: acme (premium), globex (standard),
	// initech (bulk).
	Tenants []Tenant
	// MaxQueued is every tenant's queue quota (0: the default).
	MaxQueued int
	// Schedulers to start (0: one; -1: none).
	Schedulers int
}

// Fleet is a running producer, scheduler and workers.
type Fleet struct {
	opts     Options
	URL      string
	Producer *Proc
	// Scheduler is the first scheduler started (Schedulers holds all).
	Scheduler  *Proc
	Schedulers []*Proc
	Workers    []*Proc
	Tenants    map[string]Tenant
	env        []string
	nworkers   int
	nscheds    int
}

// StartFleet starts the three services against opts.Backing and waits
// until the producer and every worker are ready.
func StartFleet(opts Options) (*Fleet, error) {
	if len(opts.Tenants) == 0 {
		opts.Tenants = []Tenant{{Name: "acme", Tier: "premium"}, {Name: "globex", Tier: "standard"}, {Name: "initech", Tier: "bulk"}}
	}
	f := &Fleet{opts: opts, Tenants: map[string]Tenant{}}
	tf, err := f.writeTenants()
	if err != nil {
		return nil, err
	}
	lib, err := ORTLib()
	if err != nil {
		return nil, err
	}
	f.env = append(opts.Backing.Env(),
		"INFERQ_ORT_LIB="+lib,
		"INFERQ_MODELS_DIR="+opts.ModelsDir,
		"INFERQ_TENANTS_FILE="+tf,
		"INFERQ_LOG_FORMAT=json",
		"INFERQ_LOG_LEVEL=debug",
		"INFERQ_WEBHOOK_ALLOW_NETS=127.0.0.0/8,::1/128",
	)
	f.env = append(f.env, opts.Env...)
	if f.Producer, f.URL, err = f.start("producer", nil); err != nil {
		f.Stop()
		return nil, err
	}
	ns := opts.Schedulers
	if ns == 0 {
		ns = 1
	}
	for i := 0; i < ns; i++ {
		if _, err := f.StartScheduler(); err != nil {
			f.Stop()
			return nil, err
		}
	}
	for i := 0; i < opts.Workers; i++ {
		if _, err := f.StartWorker(); err != nil {
			f.Stop()
			return nil, err
		}
	}
	return f, nil
}

// Env is the environment the fleet's processes get.
func (f *Fleet) Env() []string { return append([]string(nil), f.env...) }

func (f *Fleet) writeTenants() (string, error) {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, t := range f.opts.Tenants {
		key, stored := tenants.NewKey()
		t.Key = key
		if t.WebhookSecret == "" {
			t.WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		}
		f.Tenants[t.Name] = t
		fmt.Fprintf(&b, "  - name: %s\n    tier: %s\n    api_keys: [%q]\n    webhook_secret: %q\n", t.Name, t.Tier, stored, t.WebhookSecret)
		if f.opts.MaxQueued > 0 {
			fmt.Fprintf(&b, "    max_queued: %d\n", f.opts.MaxQueued)
		}
	}
	p := filepath.Join(f.opts.Dir, "tenants.yaml")
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

// start runs one service on a free port and waits for its /readyz.
func (f *Fleet) start(name string, extra []string) (*Proc, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := append(append(f.Env(), extra...), "INFERQ_HTTP_ADDR="+addr)
	label := name
	switch name {
	case "worker":
		f.nworkers++
		label = fmt.Sprintf("worker-%d", f.nworkers)
	case "scheduler":
		f.nscheds++
		label = fmt.Sprintf("scheduler-%d", f.nscheds)
	}
	p, err := StartProc(label, filepath.Join(f.opts.Bin, name), nil, env, filepath.Join(f.opts.Dir, label+".log"))
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	p.URL = url
	if err := waitFor(90*time.Second, p, func() bool { return Ready(context.Background(), url) }); err != nil {
		p.Kill()
		return nil, "", fmt.Errorf("%s: %w", label, err)
	}
	return p, url, nil
}

// Ready reports whether the service at url answers /readyz with 200.
func Ready(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// StartWorker starts one more worker with extra environment.
func (f *Fleet) StartWorker(extra ...string) (*Proc, error) {
	p, _, err := f.start("worker", append(append([]string(nil), f.opts.WorkerEnv...), extra...))
	if err != nil {
		return nil, err
	}
	f.Workers = append(f.Workers, p)
	return p, nil
}

// StartScheduler starts one more scheduler.
func (f *Fleet) StartScheduler() (*Proc, error) {
	p, _, err := f.start("scheduler", nil)
	if err != nil {
		return nil, err
	}
	if f.Scheduler == nil {
		f.Scheduler = p
	}
	f.Schedulers = append(f.Schedulers, p)
	return p, nil
}

// Stop ends every process of the fleet.
func (f *Fleet) Stop() {
	for _, w := range f.Workers {
		w.Stop(10 * time.Second)
	}
	for _, s := range f.Schedulers {
		s.Stop(10 * time.Second)
	}
	if f.Producer != nil {
		f.Producer.Stop(10 * time.Second)
	}
}

// Logs returns the names of the fleet's log files, for a failing test to
// print.
func (f *Fleet) Logs() []string {
	m, _ := filepath.Glob(filepath.Join(f.opts.Dir, "*.log"))
	sort.Strings(m)
	return m
}

// StartBacking starts NATS and Redis in dir, and uses minio (shared by
// tests, one bucket each) or starts a MinIO of its own when minio is nil.
func StartBacking(dir string, minio *Server, bucket string) (*Backing, error) {
	return StartBackingNATS(dir, minio, bucket, 1)
}

// StartBackingNATS is StartBacking with natsNodes NATS servers: more than
// one makes a NATSCluster.
func StartBackingNATS(dir string, minio *Server, bucket string, natsNodes int) (*Backing, error) {
	return startBacking(dir, minio, bucket, natsNodes, "")
}

// StartBackingRedisCluster is StartBacking with a RedisCluster in place
// of the single Redis.
func StartBackingRedisCluster(dir string, minio *Server, bucket string) (*Backing, error) {
	return startBacking(dir, minio, bucket, 1, "cluster")
}

// StartBackingRedisSentinel is StartBacking with a SentinelSet in place
// of the single Redis.
func StartBackingRedisSentinel(dir string, minio *Server, bucket string) (*Backing, error) {
	return startBacking(dir, minio, bucket, 1, "sentinel")
}

// startBacking starts the servers; redis is the shape of Redis: "" (one
// node), "cluster" or "sentinel".
func startBacking(dir string, minio *Server, bucket string, natsNodes int, redis string) (*Backing, error) {
	b := &Backing{Bucket: bucket, MinIO: minio}
	var err error
	if natsNodes > 1 {
		b.NATSCluster, err = StartNATSCluster(dir, natsNodes)
	} else {
		b.NATS, err = StartNATS(dir)
	}
	if err != nil {
		return nil, err
	}
	switch redis {
	case "cluster":
		b.RedisCluster, err = StartRedisCluster(dir)
	case "sentinel":
		b.RedisSentinel, err = StartSentinelSet(dir)
	default:
		b.Redis, err = StartRedis(dir)
	}
	if err != nil {
		b.Stop()
		return nil, err
	}
	if b.MinIO == nil {
		if b.MinIO, err = StartMinIO(dir); err != nil {
			b.Stop()
			return nil, err
		}
	}
	return b, nil
}

// Stop ends the servers the backing started (a shared MinIO too: callers
// that share one stop it themselves, after the last fleet).
func (b *Backing) Stop() {
	for _, s := range []*Server{b.NATS, b.Redis} {
		if s != nil {
			s.Stop(5 * time.Second)
		}
	}
	if b.NATSCluster != nil {
		b.NATSCluster.Stop()
	}
	if b.RedisCluster != nil {
		b.RedisCluster.Stop()
	}
	if b.RedisSentinel != nil {
		b.RedisSentinel.Stop()
	}
}
