package ort_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/zoo"
	"github.com/inferq/inferq/internal/ort"
)

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]ort.Device{"": {}, "cpu": {}, "cuda": {CUDA: true}, "cuda:3": {CUDA: true, ID: 3}} {
		got, err := ort.ParseDevice(in)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %v, %v", in, got, err)
		}
		if got.String() != map[bool]string{true: "cuda:" + string(rune('0'+want.ID)), false: "cpu"}[want.CUDA] {
			t.Errorf("%v renders as %s", got, got)
		}
	}
	for _, bad := range []string{"gpu", "cuda:-1", "cuda:x", "tpu:0"} {
		if _, err := ort.ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) accepted", bad)
		}
	}
}

func echoModel(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs ONNX Runtime; skipped in -short mode")
	}
	lib, err := fleettest.ORTLib()
	if err != nil {
		t.Fatal(err)
	}
	if err := ort.Init(lib); err != nil {
		t.Fatal(err)
	}
	if err := ort.Init(lib); err != nil {
		t.Fatalf("a second Init with the same library: %v", err)
	}
	if err := ort.Init(lib + ".other"); err == nil {
		t.Fatal("a second library in one process must be refused")
	}
	dir := t.TempDir()
	if err := zoo.Build(dir, "echo"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "echo", zoo.Version, "model.onnx")
}

func TestRun(t *testing.T) {
	s, err := ort.Open(echoModel(t), ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ort.Version() == "" || len(s.Inputs) != 1 || s.Inputs[0].DType != ort.Uint8 || s.Outputs[0].DType != ort.Float32 {
		t.Fatalf("version %q, io %+v %+v", ort.Version(), s.Inputs, s.Outputs)
	}
	out, err := s.Run([]ort.Tensor{{Shape: []int64{2, 3}, DType: ort.Uint8, Uint8: []uint8{1, 2, 3, 10, 20, 30}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Float32; len(got) != 2 || got[0] != 6 || got[1] != 60 {
		t.Fatalf("sums %v, want [6 60]", got)
	}
	if _, err := s.Run(nil); err == nil {
		t.Fatal("a run without inputs must fail")
	}
}

// TestCUDAMissing: asking the CPU build for a CUDA device fails with a
// clear error, not a crash or a silent CPU session.
func TestCUDAMissing(t *testing.T) {
	path := echoModel(t)
	_, err := ort.Open(path, ort.Options{Device: ort.Device{CUDA: true}})
	if !errors.Is(err, ort.ErrNoCUDA) {
		t.Fatalf("cuda on the CPU build: %v, want ErrNoCUDA", err)
	}
}
