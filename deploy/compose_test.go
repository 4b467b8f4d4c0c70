package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string         `yaml:"image"`
	Build           any            `yaml:"build"`
	Command         any            `yaml:"command"`
	Environment     map[string]any `yaml:"environment"`
	Healthcheck     map[string]any `yaml:"healthcheck"`
	Volumes         []string       `yaml:"volumes"`
	Profiles        []string       `yaml:"profiles"`
	DependsOn       map[string]any `yaml:"depends_on"`
	StopGracePeriod string         `yaml:"stop_grace_period"`
	ReadOnly        bool           `yaml:"read_only"`
	Deploy          map[string]any `yaml:"deploy"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal(readFile(t, "docker-compose.yml"), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return f
}

// interpolated resolves compose's ${VAR:-default} to its default (and
// ${VAR:?msg} to "").
func interpolated(s string) string {
	re := regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		sub := re.FindStringSubmatch(m)
		if strings.Contains(sub[2], "?") {
			return ""
		}
		return sub[3]
	})
}

func TestComposeFile(t *testing.T) {
	f := loadCompose(t)
	known := configEnv(t)
	targets := dockerTargets(t)
	var fleet, workers, gpuWorkers, schedulers []string
	for name, s := range f.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if target := str(s.Build, "target"); s.Build != nil && !targets[target] {
			t.Errorf("service %s builds target %q, which the Dockerfile lacks", name, target)
		}
		test := s.Healthcheck["test"]
		if test == nil || fmt.Sprint(test) == "[NONE]" || s.Healthcheck["disable"] == true {
			t.Errorf("service %s has no health check", name)
		}
		inferq := false
		for k := range s.Environment {
			if strings.HasPrefix(k, "INFERQ_") {
				inferq = true
				if !known[k] {
					t.Errorf("service %s sets %s, which no inferq process reads (internal/config)", name, k)
				}
			}
		}
		if !inferq {
			continue
		}
		fleet = append(fleet, name)
		if !s.ReadOnly {
			t.Errorf("service %s: an inferq container should run with read_only: true", name)
		}
		for _, dep := range []string{"nats", "redis", "minio"} {
			if str(s.DependsOn, dep, "condition") != "service_healthy" {
				t.Errorf("service %s does not wait for %s to be healthy", name, dep)
			}
		}
		env := func(k string) string { return interpolated(fmt.Sprint(s.Environment[k])) }
		switch {
		case strings.HasPrefix(name, "scheduler"):
			schedulers = append(schedulers, name)
		case s.Environment["INFERQ_DEVICE"] != nil:
			workers = append(workers, name)
			drain, err := time.ParseDuration(env("INFERQ_DRAIN_TIMEOUT"))
			if err != nil {
				t.Errorf("worker %s: INFERQ_DRAIN_TIMEOUT: %v", name, err)
			}
			grace, err := time.ParseDuration(s.StopGracePeriod)
			if err != nil || grace <= drain {
				t.Errorf("worker %s: stop_grace_period %q must outlast INFERQ_DRAIN_TIMEOUT %s", name, s.StopGracePeriod, drain)
			}
			if strings.HasPrefix(env("INFERQ_DEVICE"), "cuda") {
				gpuWorkers = append(gpuWorkers, name)
			}
		}
	}
	sort.Strings(schedulers)
	if len(schedulers) != 2 {
		t.Errorf("schedulers %v: want two (leader and standby)", schedulers)
	}
	if _, ok := f.Services["producer"]; !ok {
		t.Error("no producer service")
	}
	cpu := 0
	for _, w := range workers {
		if !contains(gpuWorkers, w) {
			cpu++
			if len(f.Services[w].Profiles) != 0 {
				t.Errorf("CPU worker %s is behind profile %v; the default fleet must have its two workers", w, f.Services[w].Profiles)
			}
		}
	}
	if cpu != 2 {
		t.Errorf("%d CPU workers, want 2", cpu)
	}
	checkGPUProfile(t, f, gpuWorkers)
	checkBackingServices(t, f)

	// Every INFERQ_* name anywhere in the file (interpolations and
	// comments too) and in .env.example is one the code reads.
	for _, file := range []string{"docker-compose.yml", ".env.example"} {
		if bad := unknownEnv(t, string(readFile(t, file))); len(bad) > 0 {
			t.Errorf("%s names %v, which no inferq process reads", file, bad)
		}
	}
	// Every variable the compose file interpolates is documented in
	// .env.example.
	example := string(readFile(t, ".env.example"))
	re := regexp.MustCompile(`\$\{([A-Z0-9_]+)`)
	for _, m := range re.FindAllStringSubmatch(string(readFile(t, "docker-compose.yml")), -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(example) {
			t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not list", m[1])
		}
	}
	for _, v := range []string{"nats-data", "redis-data", "minio-data"} {
		if _, ok := f.Volumes[v]; !ok {
			t.Errorf("named volume %s is not declared", v)
		}
	}
}

// checkGPUProfile: the gpu profile pins one worker per GPU, each by its
// own device reservation, and each sees its GPU as cuda:0.
func checkGPUProfile(t *testing.T, f composeFile, gpuWorkers []string) {
	t.Helper()
	if len(gpuWorkers) == 0 {
		t.Fatal("no GPU workers (gpu profile)")
	}
	ids := map[string]string{}
	for _, name := range gpuWorkers {
		s := f.Services[name]
		if !contains(s.Profiles, "gpu") {
			t.Errorf("GPU worker %s is not in the gpu profile", name)
		}
		if target := str(s.Build, "target"); target != "worker-cuda" {
			t.Errorf("GPU worker %s builds %q, want worker-cuda", name, target)
		}
		if d := interpolated(fmt.Sprint(s.Environment["INFERQ_DEVICE"])); d != "cuda:0" {
			t.Errorf("GPU worker %s: INFERQ_DEVICE %s; a container given one GPU sees it as cuda:0", name, d)
		}
		devs := list(s.Deploy, "resources", "reservations", "devices")
		if len(devs) != 1 {
			t.Errorf("GPU worker %s: want one device reservation, got %d", name, len(devs))
			continue
		}
		d := devs[0]
		if str(d, "driver") != "nvidia" || !contains(strs(list(d, "capabilities")), "gpu") {
			t.Errorf("GPU worker %s: reservation %v is not an nvidia gpu", name, d)
		}
		dev := strs(list(d, "device_ids"))
		if len(dev) != 1 || at(d, "count") != nil {
			t.Errorf("GPU worker %s: reserve exactly one device by id, got device_ids %v count %v", name, dev, at(d, "count"))
			continue
		}
		if other, dup := ids[dev[0]]; dup {
			t.Errorf("GPU workers %s and %s share device %s", other, name, dev[0])
		}
		ids[dev[0]] = name
	}
}

func strs(l []any) []string {
	var out []string
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// checkBackingServices: JetStream on file storage; Redis with AOF fsynced
// every second and no eviction.
func checkBackingServices(t *testing.T, f composeFile) {
	t.Helper()
	nats := string(readFile(t, "deploy/compose/nats.conf"))
	for _, want := range []string{"jetstream", "store_dir: /data", "sync_interval"} {
		if !strings.Contains(nats, want) {
			t.Errorf("deploy/compose/nats.conf lacks %q", want)
		}
	}
	// The server the tests pin parses the file (nats-server -t).
	out, err := exec.Command(natsServerPath(t), "-t", "-c", filepath.Join(root(t), "deploy", "compose", "nats.conf")).CombinedOutput()
	if err != nil {
		t.Errorf("nats-server rejects deploy/compose/nats.conf: %v\n%s", err, out)
	}
	if !contains(f.Services["nats"].Volumes, "nats-data:/data") {
		t.Error("NATS's /data is not on the nats-data volume")
	}
	cmd := strings.Join(strs(anyList(f.Services["redis"].Command)), " ")
	for _, want := range []string{"--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %q lacks %s", cmd, want)
		}
	}
}

// natsServerPath finds nats-server: the setup script's pinned build first,
// then PATH.
func natsServerPath(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("INFERQ_CACHE")
	if cache == "" {
		cache = filepath.Join(root(t), ".cache")
	}
	if p := filepath.Join(cache, "bin", "nats-server"); isExec(p) {
		return p
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	t.Fatal("nats-server is missing: run make deps (scripts/setup.sh installs it into .cache/bin)")
	return ""
}

func anyList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case string:
		var out []any
		for _, f := range strings.Fields(x) {
			out = append(out, f)
		}
		return out
	}
	return nil
}
