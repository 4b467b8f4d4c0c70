package onnxpb_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/onnxpb"
	"github.com/inferq/inferq/internal/ort"
)

// runModel runs an encoded model with attrModel's input.
func runModel(t *testing.T, b []byte) []ort.Tensor {
	t.Helper()
	lib, err := fleettest.ORTLib()
	if err != nil {
		t.Fatal(err)
	}
	if err := ort.Init(lib); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	m, err := onnxpb.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeBytes(path, m); err != nil {
		t.Fatal(err)
	}
	s, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run([]ort.Tensor{{Shape: []int64{2, 3}, DType: ort.Float32, Float32: []float32{-100, 0, 1, 2, -44, -34}}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeBytes(path string, e *onnxpb.Editable) error {
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

// TestEditRoundTrip: a model opened and written back unedited runs as
// written, and Open sees its nodes, outputs, constants and opsets.
func TestEditRoundTrip(t *testing.T) {
	b, err := attrModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e, err := onnxpb.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Nodes) != 8 || e.Nodes[4].OpType != "LeakyRelu" || !slices.Equal(e.Nodes[4].Inputs, []string{"y2"}) {
		t.Fatalf("nodes: %d, %+v", len(e.Nodes), e.Nodes[4])
	}
	if len(e.Outputs) != 2 || e.Outputs[0].Name != "out" || e.Opset("") != onnxpb.DefaultOpset {
		t.Fatalf("outputs %+v, opset %d", e.Outputs, e.Opset(""))
	}
	if a, ok := e.Nodes[4].Attr("alpha"); !ok || a.F != 0.5 || a.Type != onnxpb.AttrFloat {
		t.Fatalf("alpha: %+v %v", a, ok)
	}
	c2, err := e.Constant("c2")
	if err != nil || c2 == nil || !slices.Equal(c2.Float32, []float32{10, 20, 30}) {
		t.Fatalf("constant c2: %+v %v", c2, err)
	}
	pads, err := e.Constant("pads")
	if err != nil || pads == nil || !slices.Equal(pads.Int64, []int64{0, 1, 0, 0}) {
		t.Fatalf("initializer pads: %+v %v", pads, err)
	}
	if p := e.Producer("y3"); p != e.Nodes[4] || len(e.Consumers("y3")) != 1 {
		t.Fatal("producer or consumers of y3")
	}
	out := runModel(t, b)
	want := []float32{0, -44.5, 13, 0, 22, -11, 0, 34, -0.5}
	if !slices.Equal(out[0].Float32, want) || !slices.Equal(out[1].Float32, []float32{7, 250}) {
		t.Fatalf("round trip runs to %v %v", out[0].Float32, out[1].Float32)
	}
}

// TestEditConstant: SetConstant changes what a Constant node writes,
// SetOpset adds a domain, and the edited model runs with the new value.
func TestEditConstant(t *testing.T) {
	b, err := attrModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e, err := onnxpb.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetConstant(onnxpb.FloatTensor("c2", []int64{3}, []float32{0, 0, 0})); err != nil {
		t.Fatal(err)
	}
	if err := e.SetConstant(onnxpb.FloatTensor("pads", []int64{4}, []float32{0, 0, 0, 0})); err == nil {
		t.Fatal("SetConstant replaced an initializer, which no Constant node writes")
	}
	e.SetOpset("com.microsoft", 1)
	e.SetOpset("com.microsoft", 1)
	nb, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e2, err := onnxpb.Open(nb)
	if err != nil {
		t.Fatal(err)
	}
	if e2.Opset("com.microsoft") != 1 || e2.Opset("") != onnxpb.DefaultOpset {
		t.Fatalf("opsets after edit: %d %d", e2.Opset("com.microsoft"), e2.Opset(""))
	}
	// a + [1,2,3]: [[-99,2,4],[3,-42,-31]]; LeakyRelu 0.5, transposed,
	// padded.
	out := runModel(t, nb)
	want := []float32{0, -49.5, 3, 0, 2, -21, 0, 4, -15.5}
	if !slices.Equal(out[0].Float32, want) {
		t.Fatalf("edited model runs to %v, want %v", out[0].Float32, want)
	}
	e2.Nodes = e2.Nodes[1:] // drop c1: Add reads a value nothing writes
	if _, err := e2.Marshal(); err == nil {
		t.Fatal("a graph reading an unwritten value was written")
	}
}

func FuzzOpen(f *testing.F) {
	b, _ := attrModel().Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := onnxpb.Open(b); err == nil {
			for _, n := range e.Nodes {
				if n.OpType == "Constant" && len(n.Outputs) == 1 {
					_, _ = e.Constant(n.Outputs[0])
				}
			}
			_, _ = e.Marshal()
		}
	})
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }
