package deploy

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/tenants"
)

const chartDir = "charts/inferq"

// chartCase is one set of values files the chart ships, by the name of
// the case it makes.
type chartCase struct {
	name   string
	values []string
}

var chartCases = []chartCase{
	{"default", nil},
	{"gpu", []string{chartDir + "/values-gpu.yaml"}},
	{"external", []string{chartDir + "/values-external.yaml"}},
}

func valuesArgs(files []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "-f", f)
	}
	return args
}

func TestHelmLint(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			out := helm(t, append([]string{"lint", "--strict", chartDir}, valuesArgs(c.values)...)...)
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// rendered is one `helm template` of the chart, indexed.
type rendered struct {
	objs []object
}

func render(t *testing.T, chart string, args ...string) rendered {
	t.Helper()
	out := helm(t, append([]string{"template", "rel", chart, "--namespace", "inferq"}, args...)...)
	return rendered{objs: parseDocs(t, out)}
}

func (r rendered) kind(kind string) []object {
	var out []object
	for _, o := range r.objs {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r rendered) named(kind, name string) object {
	for _, o := range r.kind(kind) {
		if str(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

// workloads are the objects that run pods.
func (r rendered) workloads() []object {
	var out []object
	for _, k := range []string{"Deployment", "StatefulSet", "DaemonSet", "Job"} {
		out = append(out, r.kind(k)...)
	}
	return out
}

// containerEnv is a container's literal env values (valueFrom ones map to
// "<from secret>"), with the ConfigMaps it takes through envFrom beneath.
func (r rendered) containerEnv(c any) map[string]string {
	env := map[string]string{}
	for _, ef := range list(c, "envFrom") {
		if cm := str(ef, "configMapRef", "name"); cm != "" {
			for k, v := range mapping(r.named("ConfigMap", cm), "data") {
				env[k] = fmt.Sprint(v)
			}
		}
	}
	for _, e := range list(c, "env") {
		v := str(e, "value")
		if at(e, "valueFrom") != nil {
			v = "<from secret>"
		}
		env[str(e, "name")] = v
	}
	return env
}

func containers(w object) []any {
	spec := at(w, "spec", "template", "spec")
	return append(list(spec, "initContainers"), list(spec, "containers")...)
}

func TestChartRenders(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, chartDir, valuesArgs(c.values)...)
			if len(r.workloads()) == 0 {
				t.Fatal("rendered no workloads")
			}
			checkPods(t, r)
			checkEnvNames(t, r)
			checkComponents(t, r)
			pools := checkWorkers(t, r)
			checkKEDA(t, r, pools)
			checkTenantsSecret(t, r)
			switch c.name {
			case "gpu":
				if pools["rel-inferq-worker-gpu"] == nil {
					t.Fatal("values-gpu.yaml renders no GPU pool")
				}
			case "external":
				checkExternal(t, r)
			}
		})
	}
}

// checkPods: probes on every container; nothing runs as root or may
// escalate; the root file system is read-only.
func checkPods(t *testing.T, r rendered) {
	t.Helper()
	for _, w := range r.workloads() {
		name := str(w, "kind") + "/" + str(w, "metadata", "name")
		pod := at(w, "spec", "template", "spec")
		podUID, podUIDSet := num(pod, "securityContext", "runAsUser")
		podNonRoot, _ := at(pod, "securityContext", "runAsNonRoot").(bool)
		for _, c := range containers(w) {
			cname := name + " container " + str(c, "name")
			for _, p := range []string{"livenessProbe", "readinessProbe"} {
				if at(c, p) == nil {
					t.Errorf("%s has no %s", cname, p)
				}
			}
			uid, uidSet := num(c, "securityContext", "runAsUser")
			if !uidSet {
				uid, uidSet = podUID, podUIDSet
			}
			nonRoot, set := at(c, "securityContext", "runAsNonRoot").(bool)
			if !set {
				nonRoot = podNonRoot
			}
			switch {
			case uidSet && uid == 0:
				t.Errorf("%s runs as root (runAsUser 0)", cname)
			case !nonRoot && !uidSet:
				t.Errorf("%s may run as root: neither runAsNonRoot nor runAsUser is set", cname)
			}
			if esc, _ := at(c, "securityContext", "allowPrivilegeEscalation").(bool); esc || at(c, "securityContext", "allowPrivilegeEscalation") == nil {
				t.Errorf("%s: allowPrivilegeEscalation must be false", cname)
			}
			if ro, _ := at(c, "securityContext", "readOnlyRootFilesystem").(bool); !ro {
				t.Errorf("%s: readOnlyRootFilesystem must be true", cname)
			}
		}
	}
}

// checkEnvNames: every INFERQ_* name the chart sets is one the code reads.
func checkEnvNames(t *testing.T, r rendered) {
	t.Helper()
	known := configEnv(t)
	for _, w := range r.workloads() {
		for _, c := range containers(w) {
			for name := range r.containerEnv(c) {
				if strings.HasPrefix(name, "INFERQ_") && !known[name] {
					t.Errorf("%s sets %s, which no inferq process reads (internal/config)", str(w, "metadata", "name"), name)
				}
			}
		}
	}
	for _, cm := range r.kind("ConfigMap") {
		for name := range mapping(cm, "data") {
			if strings.HasPrefix(name, "INFERQ_") && !known[name] {
				t.Errorf("ConfigMap %s holds %s, which no inferq process reads", str(cm, "metadata", "name"), name)
			}
		}
	}
}

// checkComponents: the producer scales on CPU, two schedulers, a PDB for
// every Deployment, and the ops port serves the probes.
func checkComponents(t *testing.T, r rendered) {
	t.Helper()
	producer := r.named("Deployment", "rel-inferq-producer")
	if producer == nil {
		t.Fatal("no producer Deployment")
	}
	hpa := r.named("HorizontalPodAutoscaler", "rel-inferq-producer")
	if hpa == nil || str(hpa, "spec", "scaleTargetRef", "name") != "rel-inferq-producer" {
		t.Error("the producer has no HorizontalPodAutoscaler")
	} else if str(hpa, "spec", "metrics", 0, "resource", "name") != "cpu" {
		t.Error("the producer's HPA does not scale on CPU")
	}
	sched := r.named("Deployment", "rel-inferq-scheduler")
	if n, _ := num(sched, "spec", "replicas"); n != 2 {
		t.Errorf("scheduler replicas = %d, want 2 (leader and standby)", n)
	}
	env := r.containerEnv(at(sched, "spec", "template", "spec", "containers", 0))
	if env["INFERQ_TENANTS_FILE"] == "" {
		t.Error("the scheduler is not given the tenants file (it reads the tiers from it)")
	}
	covered := map[string]bool{}
	for _, pdb := range r.kind("PodDisruptionBudget") {
		covered[str(pdb, "spec", "selector", "matchLabels", "app.kubernetes.io/component")] = true
	}
	for _, d := range r.kind("Deployment") {
		comp := str(d, "spec", "selector", "matchLabels", "app.kubernetes.io/component")
		if !covered[comp] {
			t.Errorf("Deployment %s has no PodDisruptionBudget", str(d, "metadata", "name"))
		}
		for _, c := range containers(d) {
			if env := r.containerEnv(c); env["INFERQ_HTTP_ADDR"] != ":8080" {
				t.Errorf("%s: INFERQ_HTTP_ADDR = %q, want :8080 (the port the probes use)", str(d, "metadata", "name"), env["INFERQ_HTTP_ADDR"])
			}
		}
	}
}

// checkWorkers: GPU pools ask for one GPU per pod and CPU pools none; the
// grace period outlasts the drain. It returns the workers' Deployments by
// name.
func checkWorkers(t *testing.T, r rendered) map[string]object {
	t.Helper()
	pools := map[string]object{}
	for _, d := range r.kind("Deployment") {
		name := str(d, "metadata", "name")
		if !strings.Contains(name, "-worker-") {
			continue
		}
		pools[name] = d
		c := at(d, "spec", "template", "spec", "containers", 0)
		env := r.containerEnv(c)
		gpus := at(c, "resources", "limits", "nvidia.com/gpu")
		if strings.HasPrefix(env["INFERQ_DEVICE"], "cuda") {
			if n, _ := num(c, "resources", "limits", "nvidia.com/gpu"); n != 1 {
				t.Errorf("%s runs on %s but limits nvidia.com/gpu = %v, want 1 (one pod per GPU)", name, env["INFERQ_DEVICE"], gpus)
			}
			if env["INFERQ_DEVICE"] != "cuda:0" {
				t.Errorf("%s: INFERQ_DEVICE = %s; a pod with one GPU sees it as cuda:0", name, env["INFERQ_DEVICE"])
			}
			if !strings.Contains(str(c, "image"), "worker-cuda") {
				t.Errorf("%s runs on a GPU with image %s, not the worker-cuda image", name, str(c, "image"))
			}
			if len(mapping(d, "spec", "template", "spec", "nodeSelector")) == 0 && at(d, "spec", "template", "spec", "affinity") == nil {
				t.Errorf("%s: a GPU pool needs a node selector or affinity for the GPU nodes", name)
			}
			if len(list(d, "spec", "template", "spec", "tolerations")) == 0 {
				t.Errorf("%s: a GPU pool needs tolerations for the GPU nodes' taints", name)
			}
		} else if gpus != nil {
			t.Errorf("%s runs on %q yet asks for GPUs", name, env["INFERQ_DEVICE"])
		}
		if env["INFERQ_MODELS"] == "" {
			t.Errorf("%s: INFERQ_MODELS is empty; KEDA needs the pool's models to watch their consumers", name)
		}
		drain, err := time.ParseDuration(env["INFERQ_DRAIN_TIMEOUT"])
		if err != nil {
			t.Errorf("%s: INFERQ_DRAIN_TIMEOUT %q: %v", name, env["INFERQ_DRAIN_TIMEOUT"], err)
			continue
		}
		grace, _ := num(d, "spec", "template", "spec", "terminationGracePeriodSeconds")
		if time.Duration(grace)*time.Second <= drain {
			t.Errorf("%s: terminationGracePeriodSeconds %d does not outlast INFERQ_DRAIN_TIMEOUT %s", name, grace, drain)
		}
	}
	if len(pools) == 0 {
		t.Fatal("no worker Deployments")
	}
	return pools
}

// checkKEDA: one ScaledObject per pool, down to zero, with a
// nats-jetstream trigger on the stream and consumer the code creates for
// every model the pool serves.
func checkKEDA(t *testing.T, r rendered, pools map[string]object) {
	t.Helper()
	scaled := map[string]bool{}
	for _, so := range r.kind("ScaledObject") {
		name := str(so, "metadata", "name")
		target := str(so, "spec", "scaleTargetRef", "name")
		d := pools[target]
		if d == nil {
			t.Errorf("ScaledObject %s scales %q, which is no worker Deployment", name, target)
			continue
		}
		scaled[target] = true
		if _, set := num(d, "spec", "replicas"); set {
			t.Errorf("Deployment %s sets replicas although KEDA scales it (each upgrade would reset them)", target)
		}
		if n, ok := num(so, "spec", "minReplicaCount"); !ok || n != 0 {
			t.Errorf("%s: minReplicaCount = %v, want 0", name, at(so, "spec", "minReplicaCount"))
		}
		env := r.containerEnv(at(d, "spec", "template", "spec", "containers", 0))
		want := map[string]bool{}
		for _, m := range strings.Split(env["INFERQ_MODELS"], ",") {
			want[queue.RunConsumer(strings.TrimSpace(m))] = true
		}
		got := map[string]bool{}
		for _, tr := range list(so, "spec", "triggers") {
			if str(tr, "type") != "nats-jetstream" {
				continue
			}
			if s := str(tr, "metadata", "stream"); s != queue.RunStream {
				t.Errorf("%s: trigger stream %q, want %q (queue.RunStream)", name, s, queue.RunStream)
			}
			cons := str(tr, "metadata", "consumer")
			if !want[cons] {
				t.Errorf("%s: trigger consumer %q is not queue.RunConsumer of a model the pool serves (%s)", name, cons, env["INFERQ_MODELS"])
			}
			got[cons] = true
			if str(tr, "metadata", "natsServerMonitoringEndpoint") == "" || str(tr, "metadata", "lagThreshold") == "" {
				t.Errorf("%s: trigger for %s lacks the monitoring endpoint or the lag threshold", name, cons)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: triggers watch %v, want one per model %v", name, keys(got), keys(want))
		}
	}
	for name := range pools {
		if !scaled[name] {
			t.Errorf("worker pool %s has no ScaledObject", name)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkTenantsSecret: the tenants file the chart renders is one the
// producer accepts.
func checkTenantsSecret(t *testing.T, r rendered) {
	t.Helper()
	for _, s := range r.kind("Secret") {
		if file, ok := mapping(s, "stringData")["tenants.yaml"].(string); ok {
			if _, err := tenants.Parse([]byte(file)); err != nil {
				t.Errorf("Secret %s: the tenants file does not parse: %v", str(s, "metadata", "name"), err)
			}
		}
	}
}

// checkExternal: with external services, credentials come from the
// operator's Secrets and nothing secret is rendered; monitoring is wired.
func checkExternal(t *testing.T, r rendered) {
	t.Helper()
	for _, s := range r.kind("Secret") {
		t.Errorf("values-external.yaml renders Secret %s; its secrets should be the operator's existing ones", str(s, "metadata", "name"))
	}
	prod := r.named("Deployment", "rel-inferq-producer")
	env := r.containerEnv(at(prod, "spec", "template", "spec", "containers", 0))
	if env["INFERQ_REDIS_URL"] != "<from secret>" || env["INFERQ_S3_SECRET_KEY"] != "<from secret>" {
		t.Errorf("the Redis URL and S3 key should come from Secrets: %q, %q", env["INFERQ_REDIS_URL"], env["INFERQ_S3_SECRET_KEY"])
	}
	sm := r.kind("ServiceMonitor")
	if len(sm) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(sm))
	}
	sel := mapping(sm[0], "spec", "selector", "matchLabels")
	var matched []string
	for _, svc := range r.kind("Service") {
		labels := mapping(svc, "metadata", "labels")
		all := true
		for k, v := range sel {
			if labels[k] != v {
				all = false
			}
		}
		if all {
			matched = append(matched, str(svc, "metadata", "name"))
		}
	}
	for _, want := range []string{"rel-inferq-producer", "rel-inferq-scheduler", "rel-inferq-worker-cpu"} {
		if !contains(matched, want) {
			t.Errorf("the ServiceMonitor does not select Service %s (it selects %v)", want, matched)
		}
	}
	rules := r.kind("PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(rules))
	}
	var file map[string]any
	if err := yaml.Unmarshal(readFile(t, "deploy/prometheus/alerts.yaml"), &file); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(at(rules[0], "spec", "groups"), file["groups"]) {
		t.Error("the chart's PrometheusRule differs from deploy/prometheus/alerts.yaml")
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestTrialChart renders charts/inferq-trial without fetching the
// official nats chart (a test must not need the network): a copy with
// the inferq chart put in its charts/ and the nats dependency left out.
// It checks that Redis and MinIO run safely and that inferq points at
// the services the release creates.
func TestTrialChart(t *testing.T) {
	src := filepath.Join(root(t), "charts", "inferq-trial")
	var meta struct {
		Dependencies []struct {
			Name, Version, Repository, Condition string
		}
	}
	if err := yaml.Unmarshal(readFile(t, "charts/inferq-trial/Chart.yaml"), &meta); err != nil {
		t.Fatal(err)
	}
	var deps []string
	for _, d := range meta.Dependencies {
		deps = append(deps, d.Name)
		switch {
		case d.Repository == "file://../inferq":
		case d.Condition == "":
			t.Errorf("dependency %s has no condition: a trial must be able to leave it out", d.Name)
		}
		if d.Name == "nats" && d.Repository != "https://nats-io.github.io/k8s/helm/charts/" {
			t.Errorf("nats comes from %s, not the official chart repository", d.Repository)
		}
	}
	if !contains(deps, "inferq") || !contains(deps, "nats") {
		t.Fatalf("charts/inferq-trial depends on %v, want inferq and nats", deps)
	}

	dir := filepath.Join(t.TempDir(), "inferq-trial")
	// What `helm dependency update` fetched into charts/ stays behind.
	copyDir(t, src, dir, "charts", "Chart.lock")
	copyDir(t, filepath.Join(root(t), chartDir), filepath.Join(dir, "charts", "inferq"))
	var chart map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, d := range list(chart, "dependencies") {
		if str(d, "name") != "nats" {
			kept = append(kept, d)
		}
	}
	chart["dependencies"] = kept
	if b, err = yaml.Marshal(chart); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	if out := helm(t, "lint", "--strict", dir, "--set", "nats.enabled=false"); !strings.Contains(out, "0 chart(s) failed") {
		t.Fatalf("helm lint:\n%s", out)
	}
	r := render(t, dir, "--set", "nats.enabled=false")
	checkPods(t, r)
	checkEnvNames(t, r)
	for _, ss := range []string{"rel-redis", "rel-minio"} {
		if r.named("StatefulSet", ss) == nil {
			t.Errorf("no StatefulSet %s", ss)
		}
	}
	cm := mapping(r.named("ConfigMap", "rel-inferq-env"), "data")
	for _, k := range []string{"INFERQ_REDIS_URL", "INFERQ_S3_ENDPOINT"} {
		u, err := url.Parse(fmt.Sprint(cm[k]))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		svc := r.named("Service", u.Hostname())
		if svc == nil {
			t.Errorf("%s = %s names no Service of the release", k, cm[k])
			continue
		}
		port, _ := strconv.Atoi(u.Port())
		found := false
		for _, p := range list(svc, "spec", "ports") {
			if n, _ := num(p, "port"); n == port {
				found = true
			}
		}
		if !found {
			t.Errorf("%s = %s: Service %s has no port %d", k, cm[k], u.Hostname(), port)
		}
	}
	// The official nats chart names its client Service after the release.
	if cm["INFERQ_NATS_URL"] != "nats://rel-nats:4222" {
		t.Errorf("INFERQ_NATS_URL = %v, want the nats chart's Service nats://rel-nats:4222", cm["INFERQ_NATS_URL"])
	}
	s3 := "rel-trial-s3"
	if r.named("Secret", s3) == nil {
		t.Errorf("no Secret %s for MinIO and the fleet", s3)
	}
	prod := r.named("Deployment", "rel-inferq-producer")
	for _, e := range list(prod, "spec", "template", "spec", "containers", 0, "env") {
		if strings.HasPrefix(str(e, "name"), "INFERQ_S3_") && str(e, "valueFrom", "secretKeyRef", "name") != s3 {
			t.Errorf("the producer takes %s from %q, not MinIO's Secret %s", str(e, "name"), str(e, "valueFrom", "secretKeyRef", "name"), s3)
		}
	}
}

// copyDir copies the tree at src to dst, less the top-level entries skip.
func copyDir(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if contains(skip, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestChartNotes renders NOTES.txt, which helm template leaves out, by
// wrapping it in a ConfigMap in a copy of the chart.
func TestChartNotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inferq")
	copyDir(t, filepath.Join(root(t), chartDir), dir)
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "templates", "NOTES.txt")); err != nil {
		t.Fatal(err)
	}
	wrap := "{{- define \"test.notes\" -}}\n" + string(notes) + "\n{{- end }}\n"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: test-notes}\ndata:\n  notes: {{ include \"test.notes\" . | quote }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "_test_notes.tpl"), []byte(wrap), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "templates", "test-notes.yaml"), []byte(cm), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := append(append([]chartCase{}, chartCases...), chartCase{"no-prometheus", nil})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{}
			for _, f := range c.values {
				args = append(args, "-f", filepath.Join(root(t), f))
			}
			if c.name == "no-prometheus" {
				args = append(args, "--set", "keda.prometheus.serverAddress=")
			}
			r := render(t, dir, args...)
			text := str(r.named("ConfigMap", "test-notes"), "data", "notes")
			for _, want := range []string{"port-forward svc/rel-inferq-producer", "inferq keys new", "Worker pools:"} {
				if !strings.Contains(text, want) {
					t.Errorf("NOTES lacks %q:\n%s", want, text)
				}
			}
			if warn := strings.Contains(text, "WARNING: keda.prometheus.serverAddress is empty"); warn != (c.name == "no-prometheus") {
				t.Errorf("the Prometheus warning shows: %v, want %v:\n%s", warn, c.name == "no-prometheus", text)
			}
		})
	}
}

// TestChartRendersWithOfflineDefaults: `helm template` and `helm lint`
// work with the Kubernetes version a helm built without release ldflags
// assumes offline (v1.20), as a newcomer's helm may: a kubeVersion
// constraint in Chart.yaml made them fail unless --kube-version was given.
// Neither chart has one (the trial's lint needs its dependency fetched,
// so for it the field's absence is checked).
func TestChartRendersWithOfflineDefaults(t *testing.T) {
	for _, chart := range []string{chartDir, "charts/inferq-trial"} {
		var meta map[string]any
		if err := yaml.Unmarshal(readFile(t, chart+"/Chart.yaml"), &meta); err != nil {
			t.Fatal(err)
		}
		if v, ok := meta["kubeVersion"]; ok {
			t.Errorf("%s/Chart.yaml has kubeVersion %v: helm template fails offline without --kube-version", chart, v)
		}
	}
	if out := helm(t, "lint", "--strict", chartDir, "--kube-version", "1.20.0"); !strings.Contains(out, "0 chart(s) failed") {
		t.Fatalf("helm lint:\n%s", out)
	}
	if r := render(t, chartDir, "--kube-version", "1.20.0"); len(r.kind("Deployment")) == 0 {
		t.Fatal("helm template rendered no Deployment")
	}
}

// TestChartNATSCluster: the external values name every node of a NATS
// cluster and ask for three replicas of each stream and bucket; the
// default stays one server, one replica.
func TestChartNATSCluster(t *testing.T) {
	env := func(r rendered) map[string]any {
		cm := r.named("ConfigMap", "rel-inferq-env")
		d, _ := cm["data"].(map[string]any)
		return d
	}
	def := env(render(t, chartDir))
	if def["INFERQ_JS_REPLICAS"] != "1" {
		t.Fatalf("default INFERQ_JS_REPLICAS = %v, want 1", def["INFERQ_JS_REPLICAS"])
	}
	ext := env(render(t, chartDir, "-f", chartDir+"/values-external.yaml"))
	if ext["INFERQ_JS_REPLICAS"] != "3" {
		t.Fatalf("external INFERQ_JS_REPLICAS = %v, want 3", ext["INFERQ_JS_REPLICAS"])
	}
	urls := strings.Split(fmt.Sprint(ext["INFERQ_NATS_URL"]), ",")
	if len(urls) != 3 {
		t.Fatalf("external INFERQ_NATS_URL = %v, want three nodes", ext["INFERQ_NATS_URL"])
	}
	for _, u := range urls {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "nats" || pu.Port() == "" {
			t.Fatalf("external INFERQ_NATS_URL node %q is no nats://host:port", u)
		}
	}
}
