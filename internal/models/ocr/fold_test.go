package ocr

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/models/onnxpb"
	"github.com/inferq/inferq/internal/ort"
)

// lcnetBlocks is two PP-LCNetV3 layers as paddle2onnx writes them: a
// conv, a scalar affine, hardswish spelled out (Add 3, Clip 0..6 with
// constant bounds, Mul, Div 6), a second scalar affine, then the next
// conv: a padded 3x3 one, whose block's affine feeds an unpadded 1x1.
func lcnetBlocks() *onnxpb.Model {
	r := rand.New(rand.NewPCG(1, 2))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	m := &onnxpb.Model{Graph: onnxpb.Graph{Name: "lcnet"}}
	g := &m.Graph
	g.Inputs = []onnxpb.ValueInfo{{Name: "x", DType: onnxpb.Float, Shape: onnxpb.Shape("N", 4, 6, 10)}}
	g.Outputs = []onnxpb.ValueInfo{{Name: "y", DType: onnxpb.Float, Shape: onnxpb.Shape("N", 5, 6, 10)}}
	scalar := func(name string, v float32) string {
		return g.Op("Constant", name, nil, onnxpb.TensorAttr("value", onnxpb.FloatTensor(name+"v", []int64{1}, []float32{v})))
	}
	block := func(k, in string, wDims []int64, attrs ...onnxpb.Attr) string {
		w := g.Init(onnxpb.FloatTensor(k+"w", wDims, vals(int(wDims[0]*wDims[1]*wDims[2]*wDims[3]))))
		b := g.Init(onnxpb.FloatTensor(k+"b", wDims[:1], vals(int(wDims[0]))))
		y := g.Op("Conv", k+"conv", []string{in, w, b}, attrs...)
		y = g.Op("Mul", k+"s1", []string{scalar(k+"s1c", 1.7), y})
		y = g.Op("Add", k+"t1", []string{y, scalar(k+"t1c", 0.4)})
		a := g.Op("Add", k+"p3", []string{y, scalar(k+"three", 3)})
		c := g.Op("Clip", k+"clip", []string{a, scalar(k+"zero", 0), scalar(k+"six", 6)})
		h := g.Op("Mul", k+"mul", []string{y, c})
		h = g.Op("Div", k+"div", []string{h, scalar(k+"sixd", 6)})
		h = g.Op("Mul", k+"s2", []string{scalar(k+"s2c", 0.6), h})
		return g.Op("Add", k+"t2", []string{h, scalar(k+"t2c", -0.3)})
	}
	y := block("a", "x", []int64{4, 4, 1, 1})
	y = block("b", y, []int64{4, 1, 3, 3}, onnxpb.Int("group", 4), onnxpb.Ints("pads", 1, 1, 1, 1))
	w := g.Init(onnxpb.FloatTensor("cw", []int64{5, 4, 1, 1}, vals(20)))
	g.Op("Conv", "y", []string{y, w})
	return m
}

// TestFoldAffines folds two PP-LCNetV3 layers and runs both graphs in
// ONNX Runtime: the same outputs, with the element-wise ops gone but for
// x*HardSigmoid(x), and the shift in front of the padded conv a 1x1
// depthwise conv.
func TestFoldAffines(t *testing.T) {
	lib, err := fleettest.ORTLib()
	if err != nil {
		t.Fatal(err)
	}
	if err := ort.Init(lib); err != nil {
		t.Fatal(err)
	}
	src, err := lcnetBlocks().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e, err := onnxpb.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	after, swish, before, err := foldAffines(e)
	if err != nil {
		t.Fatal(err)
	}
	if after != 2 || swish != 2 || before != 2 {
		t.Errorf("folded %d affines after convs, %d hardswishes, %d affines before convs; want 2, 2, 2", after, swish, before)
	}
	ops := map[string]int{}
	for _, n := range e.Nodes {
		ops[n.OpType]++
	}
	if ops["Div"] != 0 || ops["Clip"] != 0 || ops["Add"] != 0 || ops["Mul"] != 2 || ops["HardSigmoid"] != 2 || ops["Conv"] != 4 || ops["Constant"] != 0 {
		t.Errorf("ops after folding: %v", ops)
	}
	folded, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*4*6*10)
	for i := range x {
		x[i] = float32(math.Sin(float64(i))) * 4
	}
	var outs [2][]float32
	for k, b := range [][]byte{src, folded} {
		path := filepath.Join(t.TempDir(), "m.onnx")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		o, err := s.Run([]ort.Tensor{{Shape: []int64{2, 4, 6, 10}, DType: ort.Float32, Float32: x}})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		outs[k] = o[0].Float32
	}
	for i := range outs[0] {
		if d := math.Abs(float64(outs[0][i] - outs[1][i])); d > 1e-4*(1+math.Abs(float64(outs[0][i]))) {
			t.Fatalf("output %d: %g folded, %g as written", i, outs[1][i], outs[0][i])
		}
	}
}
