package onnxpb_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/onnxpb"
	"github.com/inferq/inferq/internal/ort"
)

// attrModel uses every attribute kind and initializer type the writer
// supports, in ops whose results depend on each one.
func attrModel() *onnxpb.Model {
	m := &onnxpb.Model{ProducerName: "onnxpb-test", Metadata: map[string]string{"k": "v"}, Graph: onnxpb.Graph{Name: "attrs"}}
	g := &m.Graph
	g.Inputs = []onnxpb.ValueInfo{{Name: "a", DType: onnxpb.Float, Shape: onnxpb.Shape("N", 3)}}
	g.Outputs = []onnxpb.ValueInfo{
		{Name: "out", DType: onnxpb.Float, Shape: onnxpb.Shape(3, "M")},
		{Name: "bytes", DType: onnxpb.Float, Shape: onnxpb.Shape(2)},
	}
	c1 := g.Op("Constant", "c1", nil, onnxpb.Floats("value_floats", 1, 2, 3))
	c2 := g.Op("Constant", "c2", nil, onnxpb.TensorAttr("value", onnxpb.FloatTensor("c2v", []int64{3}, []float32{10, 20, 30})))
	y := g.Op("Add", "y1", []string{"a", c1})
	y = g.Op("Add", "y2", []string{y, c2})
	y = g.Op("LeakyRelu", "y3", []string{y}, onnxpb.Float32("alpha", 0.5))
	y = g.Op("Transpose", "y4", []string{y}, onnxpb.Ints("perm", 1, 0))
	pads := g.Init(onnxpb.Int64Tensor("pads", []int64{4}, []int64{0, 1, 0, 0}))
	g.Op("Pad", "out", []string{y, pads}, onnxpb.String("mode", "constant"))
	g.Init(&onnxpb.Tensor{Name: "u8", DType: onnxpb.Uint8, Dims: []int64{2}, Uint8: []uint8{7, 250}})
	g.Op("Cast", "bytes", []string{"u8"}, onnxpb.Int("to", int64(onnxpb.Float)))
	return m
}

func TestWriterRunsInONNXRuntime(t *testing.T) {
	lib, err := fleettest.ORTLib()
	if err != nil {
		t.Fatal(err)
	}
	if err := ort.Init(lib); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := attrModel().WriteFile(path); err != nil {
		t.Fatal(err)
	}
	s, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Inputs) != 1 || !slices.Equal(s.Inputs[0].Shape, []int64{-1, 3}) || s.Inputs[0].DType != ort.Float32 {
		t.Fatalf("inputs %+v", s.Inputs)
	}
	out, err := s.Run([]ort.Tensor{{Shape: []int64{2, 3}, DType: ort.Float32, Float32: []float32{-100, 0, 1, 2, -44, -34}}})
	if err != nil {
		t.Fatal(err)
	}
	// a + [1,2,3] + [10,20,30]: [[-89,22,34],[13,-22,-1]]; LeakyRelu 0.5:
	// [[-44.5,22,34],[13,-11,-0.5]]; transposed, one zero column padded in
	// front.
	want := []float32{0, -44.5, 13, 0, 22, -11, 0, 34, -0.5}
	if !slices.Equal(out[0].Shape, []int64{3, 3}) || !slices.Equal(out[0].Float32, want) {
		t.Fatalf("out = %v %v, want [3 3] %v", out[0].Shape, out[0].Float32, want)
	}
	if !slices.Equal(out[1].Float32, []float32{7, 250}) {
		t.Fatalf("bytes = %v", out[1].Float32)
	}
}

func TestReadGraphIO(t *testing.T) {
	b, err := attrModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	io, err := onnxpb.ReadGraphIO(b)
	if err != nil {
		t.Fatal(err)
	}
	if io.IRVersion != onnxpb.DefaultIRVersion || io.Opset != onnxpb.DefaultOpset {
		t.Fatalf("ir %d opset %d", io.IRVersion, io.Opset)
	}
	if len(io.Inputs) != 1 || io.Inputs[0].Name != "a" || io.Inputs[0].DType != onnxpb.Float ||
		!slices.Equal(io.Inputs[0].Shape, []onnxpb.Dim{{Param: "N"}, {Value: 3}}) {
		t.Fatalf("inputs %+v", io.Inputs)
	}
	if len(io.Outputs) != 2 || io.Outputs[0].Name != "out" || !slices.Equal(onnxpb.Dims(io.Outputs[0].Shape), []int64{3, -1}) {
		t.Fatalf("outputs %+v", io.Outputs)
	}
	if _, err := onnxpb.ReadGraphIO([]byte{0xff, 0xff}); err == nil {
		t.Fatal("garbage read as a model")
	}
}

func TestCheck(t *testing.T) {
	m := attrModel()
	m.Graph.Node("Relu", []string{"missing"}, []string{"z"})
	if _, err := m.Marshal(); err == nil {
		t.Fatal("a node reading an undefined value was written")
	}
	m = attrModel()
	m.Graph.Initializers[0].Int64 = m.Graph.Initializers[0].Int64[:2]
	if _, err := m.Marshal(); err == nil {
		t.Fatal("a tensor short of its dims was written")
	}
}

func FuzzReadGraphIO(f *testing.F) {
	b, _ := attrModel().Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = onnxpb.ReadGraphIO(b)
	})
}
