package zoo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/ort"
)

// initORT loads ONNX Runtime, failing (never skipping) with how to get it.
func initORT(t *testing.T) {
	t.Helper()
	lib, err := fleettest.ORTLib()
	if err != nil {
		t.Fatal(err)
	}
	if err := ort.Init(lib); err != nil {
		t.Fatal(err)
	}
}

// openBuilt builds name into a fresh directory and opens it in ONNX
// Runtime, checking the session declares what the manifest says.
func openBuilt(t *testing.T, name string) (*catalog.Manifest, *ort.Session) {
	t.Helper()
	initORT(t)
	dir := t.TempDir()
	if err := Build(dir, name); err != nil {
		t.Fatal(err)
	}
	m, err := catalog.LoadManifest(filepath.Join(dir, name, Version))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.Open(m.Path(m.File), ort.Options{IntraOpThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	checkIO(t, "input", m.Inputs, s.Inputs)
	checkIO(t, "output", m.Outputs, s.Outputs)
	return m, s
}

func checkIO(t *testing.T, what string, specs []catalog.IOSpec, got []ort.IO) {
	t.Helper()
	if len(specs) != len(got) {
		t.Fatalf("%ss: manifest has %d, graph %d", what, len(specs), len(got))
	}
	for i, sp := range specs {
		g := got[i]
		if sp.Name != g.Name || sp.DType != string(g.DType) || len(sp.Shape) != len(g.Shape) {
			t.Fatalf("%s %d: manifest %+v, graph %+v", what, i, sp, g)
		}
		for j, d := range sp.Shape {
			if g.Shape[j] != -1 && g.Shape[j] != d {
				t.Fatalf("%s %s dim %d: manifest %d, graph %d", what, sp.Name, j, d, g.Shape[j])
			}
		}
	}
}

func TestEcho(t *testing.T) {
	m, s := openBuilt(t, "echo")
	if m.Preprocess.Kind != "bytes" || m.Preprocess.MaxLen != 4096 || m.Postprocess.Kind != "echo" || m.MaxBatch != 64 {
		t.Fatalf("manifest: %+v", m)
	}
	data := []uint8{
		1, 2, 3, 4, 5,
		255, 255, 255, 255, 255,
		0, 0, 0, 0, 7,
	}
	out, err := s.Run([]ort.Tensor{{Shape: []int64{3, 5}, DType: ort.Uint8, Uint8: data}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{15, 1275, 7}
	if len(out) != 1 || len(out[0].Shape) != 1 || out[0].Shape[0] != 3 {
		t.Fatalf("output: %+v", out)
	}
	for i, w := range want {
		if out[0].Float32[i] != w {
			t.Fatalf("sum[%d] = %v, want %v", i, out[0].Float32[i], w)
		}
	}
}

func TestBuildSkipsWhatIsUpToDate(t *testing.T) {
	dir := t.TempDir()
	r1, err := BuildModel(dir, "echo")
	if err != nil || r1.Skipped {
		t.Fatalf("first build: %+v, %v", r1, err)
	}
	r2, err := BuildModel(dir, "echo")
	if err != nil || !r2.Skipped {
		t.Fatalf("second build should skip: %+v, %v", r2, err)
	}
	// A changed file is rebuilt, and the rebuild restores it.
	onnx := filepath.Join(r1.Dir, "model.onnx")
	orig, _ := os.ReadFile(onnx)
	if err := os.WriteFile(onnx, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r3, err := BuildModel(dir, "echo")
	if err != nil || r3.Skipped {
		t.Fatalf("build over a changed file should rebuild: %+v, %v", r3, err)
	}
	if got, _ := os.ReadFile(onnx); string(got) != string(orig) {
		t.Fatal("rebuild did not restore model.onnx")
	}
	// Nothing but the version directory is left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "echo"))
	if len(entries) != 1 || entries[0].Name() != Version {
		t.Fatalf("echo/ holds %v", entries)
	}
	if _, err := BuildModel(dir, "nope"); err == nil {
		t.Fatal("unknown model built")
	}
}

func TestBuildOCR(t *testing.T) {
	src := filepath.Join(fleettest.CacheDir(), "ocr")
	if _, err := os.Stat(filepath.Join(src, OCRDetSource)); err != nil {
		t.Fatalf("PP-OCRv4 files not in %s: run `make deps` (%v)", src, err)
	}
	dir := t.TempDir()
	if err := BuildOCR(dir, src); err != nil {
		t.Fatal(err)
	}
	m, err := catalog.LoadManifest(filepath.Join(dir, "ocr", Version))
	if err != nil {
		t.Fatal(err)
	}
	if m.File != "det.onnx" || m.Files["rec"] != "rec.onnx" || m.Files["dict"] != OCRDictSource {
		t.Fatalf("manifest files: %q %v", m.File, m.Files)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].Name != "x" || len(m.Inputs[0].Shape) != 4 || m.Inputs[0].Shape[1] != 3 {
		t.Fatalf("inputs: %+v", m.Inputs)
	}
	for _, f := range []string{m.File, m.Files["rec"], m.Files["dict"]} {
		if _, err := os.Stat(m.Path(f)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := BuildOCRModel(dir, src)
	if err != nil || !r.Skipped {
		t.Fatalf("second ocr build should skip: %+v, %v", r, err)
	}
}
