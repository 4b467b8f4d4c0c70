package deploy

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDashboard: the Grafana dashboard parses, queries only metrics the
// code defines, and shows what operators look at first.
func TestDashboard(t *testing.T) {
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, "deploy/grafana/inferq-dashboard.json"), &dash); err != nil {
		t.Fatalf("deploy/grafana/inferq-dashboard.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	known := sourceMetrics(t)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced query %s", p.Title, tg.Expr)
			}
			for _, m := range metricRefs(tg.Expr) {
				used[m] = true
				if !known[m] {
					t.Errorf("panel %q queries %s, which the code does not define", p.Title, m)
				}
			}
		}
	}
	// Per-tier attainment, queue depth, batch size, throughput, latency
	// percentiles, worker busy ratio.
	for _, m := range []string{"inferq_sla_jobs_met_deadline_total", "inferq_queue_depth_jobs", "inferq_worker_batch_size",
		"inferq_worker_jobs_total", "inferq_job_latency_seconds", "inferq_worker_busy_seconds_total"} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// TestAlertRules: the rules parse, use metrics the code defines, cover
// premium attainment, queue age and failing (dead-lettered) jobs, and the
// chart ships the same file.
func TestAlertRules(t *testing.T) {
	raw := readFile(t, "deploy/prometheus/alerts.yaml")
	if !bytes.Equal(raw, readFile(t, "charts/inferq/files/alerts.yaml")) {
		t.Error("charts/inferq/files/alerts.yaml differs from deploy/prometheus/alerts.yaml: copy it over")
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yaml: %v", err)
	}
	known := sourceMetrics(t)
	alerts := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q in %s needs alert, expr, labels.severity, and a summary and description", r.Alert, g.Name)
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = r.Expr
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("alert %s: unbalanced parentheses", r.Alert)
			}
			for _, m := range metricRefs(r.Expr) {
				if !known[m] {
					t.Errorf("alert %s uses %s, which the code does not define", r.Alert, m)
				}
			}
		}
	}
	for name, metric := range map[string]string{
		"InferqPremiumAttainmentLow": `inferq_sla_jobs_met_deadline_total{tier="premium"}`,
		"InferqQueueOldestJobOld":    "inferq_queue_oldest_wait_seconds",
		"InferqJobsFailing":          `inferq_worker_jobs_total{status="failed"}`,
	} {
		if !strings.Contains(alerts[name], metric) {
			t.Errorf("alert %s should watch %s", name, metric)
		}
	}
}

// TestDocs: the operations guide lists every metric the code defines and
// every INFERQ_* variable the processes read; the deploy guide covers
// what the issue asks of it. A metric or variable added to the code
// without a line in docs/operations.md fails here.
func TestDocs(t *testing.T) {
	ops := string(readFile(t, "docs/operations.md"))
	var missing []string
	for m := range sourceMetrics(t) {
		if !regexp.MustCompile("`" + m + "`").MatchString(ops) {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/operations.md does not document metrics %v (add a row to its metrics table)", missing)
	}
	missing = nil
	for name := range configEnv(t) {
		if !strings.Contains(ops, "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/operations.md does not document variables %v (add a row to its configuration table)", missing)
	}
	if bad := unknownEnv(t, ops); len(bad) > 0 {
		t.Errorf("docs/operations.md names %v, which no inferq process reads", bad)
	}
	deploy := string(readFile(t, "docs/deploy.md"))
	for _, want := range []string{"docker compose", "helm", "sync_interval", "Jepsen", "appendfsync", "KEDA", "nvidia.com/gpu", "worker-cuda", "backup", "upgrad"} {
		if !strings.Contains(strings.ToLower(deploy), strings.ToLower(want)) {
			t.Errorf("docs/deploy.md does not cover %q", want)
		}
	}
}
