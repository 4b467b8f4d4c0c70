package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/zoo"
	"github.com/inferq/inferq/internal/rollout"
)

// writeDigitsAs writes the digits model as model name, version, changed
// by edit (the manifest and the labels, in place).
func writeDigitsAs(t *testing.T, dir, name, version string, edit func(m *catalog.Manifest, labels []string) []string) {
	t.Helper()
	src := filepath.Join(modelsDir, "digits", "1")
	man, err := catalog.LoadManifest(src)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := os.ReadFile(filepath.Join(src, man.Files["labels"]))
	if err != nil {
		t.Fatal(err)
	}
	labels := strings.Split(strings.TrimSpace(string(lb)), "\n")
	man.Name, man.Version = name, version
	if edit != nil {
		labels = edit(man, labels)
	}
	// Install atomically, as an operator does: write aside, then rename.
	tmp := filepath.Join(dir, ".staging", name, version)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	graph, err := os.ReadFile(filepath.Join(src, man.File))
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := yaml.Marshal(man)
	for f, b := range map[string][]byte{man.File: graph, man.Files["labels"]: []byte(strings.Join(labels, "\n") + "\n"), catalog.ManifestFile: mb} {
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name, version)); err != nil {
		t.Fatal(err)
	}
}

// rolloutOf reads a model's rollout through GET /v1/models.
func rolloutOf(t *testing.T, ctx context.Context, c *client.Client, model string) (version string, r *client.Rollout) {
	t.Helper()
	ms, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == model {
			return m.Version, m.Rollout
		}
	}
	return "", nil
}

// TestRollouts: three new versions of the digits model, each declared with
// a rollout in its manifest, on one fleet: a good one is promoted at the
// end of its window, although the scheduler judging it is killed midway;
// one whose graph fails at run is rolled back on its failure rate, its
// failed jobs answered by the old version; one that answers permuted labels
// is rolled back by the shadow comparison. Every job succeeds, each on the
// version its id picks while the rollout runs, and the canary share is
// honoured.
func TestRollouts(t *testing.T) {
	dir := t.TempDir()
	models := []string{"good", "failing", "permuted"}
	for _, m := range models {
		writeDigitsAs(t, dir, m, "1", nil)
	}
	f := startFleet(t, fleettest.Options{ModelsDir: dir, Env: []string{
		"INFERQ_MODELS_REFRESH=200ms", "INFERQ_ROLLOUT_REFRESH=200ms", "INFERQ_ROLLOUT_MIN_JOBS=20"}})
	ctx := ctxT(t, 4*time.Minute)
	c := f.client("globex")
	windows := map[string]string{"good": "25s", "failing": "10m", "permuted": "10m"}
	for _, m := range models {
		writeDigitsAs(t, dir, m, "2", func(man *catalog.Manifest, labels []string) []string {
			man.Rollout = map[string]string{"canary": "30%", "for": windows[m], "shadow": "40%"}
			switch m {
			case "failing":
				// The graph takes 8x8 images: a 9x9 tensor fails every run.
				man.Preprocess.Width, man.Preprocess.Height = 9, 9
				man.Inputs[0].Shape = []int64{-1, 1, 9, 9}
			case "permuted":
				slices.Reverse(labels)
			}
			return labels
		})
	}
	// Wait for the producer (and, a little after, the worker) to see them.
	for _, m := range models {
		for v, _ := rolloutOf(t, ctx, c, m); v != "2"; v, _ = rolloutOf(t, ctx, c, m) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(time.Second)
	digits, _, err := zoo.DigitsHeldOut()
	if err != nil {
		t.Fatal(err)
	}
	const n = 150
	inputs := make([][]byte, n)
	for i := range inputs {
		inputs[i] = digitPNG(t, digits[i%len(digits)], 24, true)
	}
	ran := map[string][]*client.Job{}
	for _, m := range models {
		ran[m] = submitAll(t, ctx, c, m, inputs, "image/png")
		if m != "good" {
			continue
		}
		// A scheduler killed mid-rollout: its successor judges from Redis.
		if _, r := rolloutOf(t, ctx, c, m); r == nil || r.Status != "running" {
			t.Fatalf("good: rollout %+v before the scheduler is killed, want running", r)
		}
		f.Scheduler.Kill()
		if _, err := f.StartScheduler(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]rollout.Status{"good": rollout.Promoted, "failing": rollout.RolledBack, "permuted": rollout.RolledBack}
	reasons := map[string]string{"good": "clean window", "failing": "failure rate", "permuted": "agree on"}
	for _, m := range models {
		var r *client.Rollout
		for _, r = rolloutOf(t, ctx, c, m); r == nil || r.Status == "running"; _, r = rolloutOf(t, ctx, c, m) {
			if ctx.Err() != nil {
				dumpLogs(t, filepath.Dir(f.Logs()[0]))
				t.Fatalf("%s: rollout still %+v", m, r)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%s: %s (%s), counts %v", m, r.Status, r.Reason, r.Counts)
		if r.Status != string(want[m]) || !strings.Contains(r.Reason, reasons[m]) || r.From != "1" || r.To != "2" {
			t.Errorf("%s: rollout %+v, want %s for %q", m, r, want[m], reasons[m])
		}
		st := &rollout.State{From: "1", To: "2", Canary: r.Canary, Status: rollout.Running}
		picked := 0
		for i, j := range ran[m] {
			want := st.Version(j.ID, "2")
			if want == "2" {
				picked++
			}
			if m == "failing" {
				// A job whose run failed on the canary is answered by the
				// old version (and counted against the new one).
				want = "1"
			}
			if j.Status != "succeeded" {
				t.Errorf("%s: job %d on version %s: %s %+v", m, i, j.ModelVersion, j.Status, j.Error)
			}
			if j.FinishedAt != nil && j.FinishedAt.Before(r.EndedAt) && j.ModelVersion != want {
				t.Errorf("%s: job %d (%s) ran on version %s, want %s", m, i, j.ID, j.ModelVersion, want)
			}
		}
		if share := float64(picked) / n; share < 0.2 || share > 0.4 {
			t.Errorf("%s: ids pick the canary for %.2f of jobs, want about 0.3", m, share)
		}
		// The verdicts on failures and the clean window wait for MinJobs on
		// the new version; the shadow comparison's for MinShadow compared
		// outputs alone, which may come first.
		th, c := rollout.DefaultThresholds, r.Counts["2"]
		sample := c["jobs"] >= th.MinJobs
		if m == "permuted" {
			sample = r.Counts["1"]["shadow"]+c["shadow"] >= th.MinShadow
		}
		if !sample || (m == "failing") != (c["failed"] == c["jobs"]) {
			t.Errorf("%s: counts on version 2 %v (on version 1 %v)", m, c, r.Counts["1"])
		}
	}
	// After the verdicts: the promoted version serves everyone, a rolled-back
	// one no one.
	for _, m := range models {
		wantV := map[string]string{"good": "2", "failing": "1", "permuted": "1"}[m]
		for i, j := range submitAll(t, ctx, c, m, inputs[:10], "image/png") {
			if j.Status != "succeeded" || j.ModelVersion != wantV {
				t.Errorf("%s after the verdict: job %d %s on version %s, want version %s", m, i, j.Status, j.ModelVersion, wantV)
			}
		}
	}
	// What the comparison cost: the worker's second runs and comparisons.
	if resp, err := http.Get(f.Workers[0].URL + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var jobs, secs float64
		for _, line := range strings.Split(string(b), "\n") {
			var v float64
			if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err != nil {
				continue
			}
			switch {
			case strings.HasPrefix(line, "inferq_rollout_shadow_jobs_total{"):
				jobs += v
			case strings.HasPrefix(line, "inferq_rollout_shadow_seconds_total{"):
				secs += v
			}
		}
		if jobs > 0 {
			t.Logf("shadow comparison: %.0f jobs, %.0f µs each (second run and comparison, off the jobs' path)", jobs, 1e6*secs/jobs)
		}
	}
	// Memory stays bounded: the worker let the good model's old version go
	// once the new one was promoted.
	unloaded := false
	for _, l := range f.Logs() {
		b, _ := os.ReadFile(l)
		for _, line := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(line, []byte("model version unloaded")) && bytes.Contains(line, []byte("good")) {
				unloaded = true
			}
		}
	}
	if !unloaded {
		t.Error("the worker did not unload the good model's version 1 after its promotion")
	}
}
