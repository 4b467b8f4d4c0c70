package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the harness's helper processes (load
// generators, the asynq peer's worker): the harness starts its own binary
// again for them.
func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(RunChild())
	}
	os.Exit(m.Run())
}

// TestScenariosTiny runs every scenario once at the tiny size against real
// NATS, Redis, MinIO, ONNX Runtime and the fleet's binaries, so that the
// harness keeps working as the fleet changes. It asserts what the report
// holds, never how fast anything was.
func TestScenariosTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("TestScenariosTiny starts NATS, Redis, MinIO and the fleet: skipped in -short mode")
	}
	// Four minutes sufficed alone on this project's 2-core machines (about
	// two); beside other CPU work it did not.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rep, err := Run(ctx, Config{Size: Tiny(), Log: &log, Command: "go test ./internal/bench"})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Log(log.String())
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "benchmarks.json"))
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, b, ScenarioNames())
	md, err := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ScenarioNames() {
		if !strings.Contains(string(md), "## "+name+":") {
			t.Errorf("benchmarks.md has no section for %s", name)
		}
	}
	// The ratios and targets issue 16 reads are wired up.
	for name, keys := range map[string][]string{
		"overhead":   {"fleet_over_jetstream", "cold_over_warm"},
		"ingest":     {"ingest_files_per_s_over_jetstream_publish_multipart", "ingest_files_per_s_over_jetstream_publish_zip"},
		"asynq-peer": {"inferq_over_asynq_digits", "inferq_over_asynq_inline_digits"},
		"ocr-peer":   {"ocr_pages_per_s_over_tesseract"},
	} {
		for _, k := range keys {
			if _, ok := rep.Scenarios[name].Ratios[k]; !ok {
				t.Errorf("%s reports no ratio %s", name, k)
			}
		}
	}
	for name, keys := range map[string][]string{
		"overhead":   {"fleet_over_jetstream", "cpu_us_per_job_all", "load80_p99_ms", "cold_minus_warm_ms"},
		"ingest":     {"ingest_files_per_s_multipart", "ingest_files_per_s_zip"},
		"asynq-peer": {"inferq_over_asynq_digits"},
	} {
		for _, k := range keys {
			if _, ok := rep.Scenarios[name].Targets[k]; !ok {
				t.Errorf("%s has no target on %s", name, k)
			}
		}
	}
	// Every scenario that has a target reports it against a value it
	// measured.
	for name, s := range rep.Scenarios {
		for k, tg := range s.Targets {
			if math.IsNaN(tg.got) {
				t.Errorf("%s: target %s has no measured value", name, k)
			}
		}
	}
}

// checkShape checks the JSON form outside checks rely on: {"date",
// "cores", "scenarios": {"<name>": {"ratios", "figures", "targets":
// {"<name>": {"want", "met"}}}}}, with every scenario present and each
// reporting at least one ratio.
func checkShape(t *testing.T, b []byte, want []string) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"date", "cores", "scenarios"} {
		if _, ok := top[k]; !ok {
			t.Fatalf("report has no %q: %s", k, b)
		}
	}
	if len(top) != 3 {
		t.Errorf("report has keys beyond date, cores, scenarios: %s", b)
	}
	var date string
	if err := json.Unmarshal(top["date"], &date); err != nil || date == "" {
		t.Errorf("date %s", top["date"])
	}
	var cores int
	if err := json.Unmarshal(top["cores"], &cores); err != nil || cores < 1 {
		t.Errorf("cores %s", top["cores"])
	}
	var scen map[string]map[string]json.RawMessage
	if err := json.Unmarshal(top["scenarios"], &scen); err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		s, ok := scen[name]
		if !ok {
			t.Errorf("no scenario %s", name)
			continue
		}
		if len(s) != 3 {
			t.Errorf("%s: keys %v, want ratios, figures, targets", name, sortedKeys(s))
		}
		var ratios, figures map[string]float64
		var targets map[string]map[string]json.RawMessage
		if err := json.Unmarshal(s["ratios"], &ratios); err != nil {
			t.Errorf("%s ratios: %v", name, err)
		}
		if err := json.Unmarshal(s["figures"], &figures); err != nil {
			t.Errorf("%s figures: %v", name, err)
		}
		if err := json.Unmarshal(s["targets"], &targets); err != nil {
			t.Errorf("%s targets: %v", name, err)
		}
		if len(ratios) == 0 {
			t.Errorf("%s reports no ratio", name)
		}
		for k, tg := range targets {
			var w float64
			var met bool
			if len(tg) != 2 || json.Unmarshal(tg["want"], &w) != nil || json.Unmarshal(tg["met"], &met) != nil {
				t.Errorf("%s target %s: %v, want {want: number, met: bool}", name, k, tg)
			}
		}
	}
}

// TestIngestFiles checks the ingest scenario's batch: the same bytes every
// run, PNGs of about 2 KiB that decode, and a zip that holds each of them
// under its name.
func TestIngestFiles(t *testing.T) {
	const n = 30
	a, err := ingestFiles(n)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ingestFiles(n)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("file %d differs between two draws", i)
		}
		img, err := png.Decode(bytes.NewReader(a[i]))
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		if sz := img.Bounds().Size(); sz.X != ingestPNGSize || sz.Y != ingestPNGSize {
			t.Errorf("file %d is %v", i, sz)
		}
		total += len(a[i])
	}
	if m := total / n; m < 1536 || m > 2560 {
		t.Errorf("files are %d bytes on average, want about 2 KiB", m)
	}
	z, err := zipOf(a)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != n {
		t.Fatalf("zip holds %d files, want %d", len(zr.File), n)
	}
	for i, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || zf.Name != ingestName(i) || !bytes.Equal(got, a[i]) {
			t.Errorf("zip entry %d: %s (%v), want %s with the file's bytes", i, zf.Name, err, ingestName(i))
		}
	}
	if d := inlineMessageSize("digits", 2048); d <= 2048 {
		t.Errorf("a job message with 2048 bytes inline is %d bytes", d)
	}
}

func TestReportShape(t *testing.T) {
	r := newResult("x", "title", "about")
	r.ratio("a_over_b", 1.5, "a over b")
	r.ratio("bad", math.NaN(), "unmeasurable")
	r.figure("a_per_s", 1234.5678, "jobs/s")
	r.atLeast("a_over_b", 2, "a at least twice b")
	r.atLeast("missing", 1, "not measured")
	rep := &Report{Date: "2026-11-29", Cores: 2}
	rep.add(r)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, b, []string{"x"})
	if _, ok := r.Ratios["bad"]; ok {
		t.Error("a NaN ratio went into the report")
	}
	if tg := r.Targets["a_over_b"]; tg.Met || tg.Want != 2 {
		t.Errorf("target %+v", tg)
	}
	// A tie with a value of many digits (2 errors in 296 characters on
	// both sides) is met, though the figure is stored rounded.
	r.figure("cer", 100*2.0/296, "% wrong")
	r.atMostTarget("cer", 100*2.0/296, "no worse than the peer")
	if tg := r.Targets["cer"]; !tg.Met {
		t.Errorf("a tie is not met: %+v against %v", tg, r.Figures["cer"])
	}
	if tg := r.Targets["missing"]; tg.Met {
		t.Error("a target on nothing measured is met")
	}
	md := rep.Markdown()
	for _, want := range []string{"## Ratios", "| x | a_over_b | 1.50 | ≥ 2.00 | **not met** |", "cores: 2"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if i, j := strings.Index(md, "| ratio |"), strings.Index(md, "| figure |"); i < 0 || j < i {
		t.Error("ratios do not come before figures")
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, c := range []struct{ p, want float64 }{{50, 3}, {99, 5}, {20, 1}, {100, 5}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
	if got := ratioOfRounds([]float64{2, 4}, []float64{1, 4}); got != 1.5 {
		t.Errorf("ratioOfRounds = %v", got)
	}
}

func TestScaledTraces(t *testing.T) {
	full, short := scaled(1), scaled(0.01)
	if len(full) != len(short) {
		t.Fatal("scaling changed the traces")
	}
	for i := range full {
		if short[i].Duration >= full[i].Duration {
			t.Errorf("%s not shortened", full[i].Name)
		}
	}
}

// TestReadTesseractStops: when every reader stops at an error (ctx ended,
// each tesseract killed or never started), readTesseract returns the
// error rather than wait for readers that are gone.
func TestReadTesseractStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ps := make([]ocrPage, 5)
	done := make(chan error, 1)
	go func() {
		_, err := readTesseract(ctx, ps, 2)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("readTesseract with its context ended returned no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("readTesseract still waits 30 s after its readers stopped")
	}
}
