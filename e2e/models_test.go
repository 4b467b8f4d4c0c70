package e2e

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/onnxpb"
	"github.com/inferq/inferq/internal/models/zoo"
)

// buildModels builds a models directory for a test: the named zoo models,
// plus a "slow" model when slowMatMuls > 0.
func buildModels(dir string, slowMatMuls int, names ...string) error {
	if err := zoo.Build(dir, names...); err != nil {
		return err
	}
	if slowMatMuls > 0 {
		return writeSlowModel(dir, "slow", "1", slowMatMuls)
	}
	return nil
}

// writeSlowModel writes a model that answers like echo but spends real
// compute first: a chain of n 512x512 matrix products that depends on the
// input (so ONNX Runtime cannot fold it away). Tests use it to catch a
// worker in the middle of a job.
func writeSlowModel(dir, name, version string, n int) error {
	const size = 512
	m := &onnxpb.Model{ProducerName: "inferq-fleettest", Graph: onnxpb.Graph{Name: name}}
	g := &m.Graph
	g.Inputs = []onnxpb.ValueInfo{{Name: "data", DType: onnxpb.Uint8, Shape: onnxpb.Shape("N", "L")}}
	g.Outputs = []onnxpb.ValueInfo{{Name: "sum", DType: onnxpb.Float, Shape: onnxpb.Shape("N")}}
	eye := make([]float32, size*size)
	for i := 0; i < size; i++ {
		eye[i*size+i] = 1
	}
	w := g.Init(onnxpb.FloatTensor("eye", []int64{size, size}, eye))
	axes := g.Init(onnxpb.Int64Tensor("axes", []int64{1}, []int64{1}))
	zero := g.Init(onnxpb.FloatTensor("zero", []int64{1}, []float32{0}))
	f := g.Op("Cast", "f", []string{"data"}, onnxpb.Int("to", int64(onnxpb.Float)))
	sum := g.Op("ReduceSum", "rowsum", []string{f, axes}, onnxpb.Int("keepdims", 0))
	mean := g.Op("ReduceMean", "mean", []string{sum}, onnxpb.Int("keepdims", 0))
	x := g.Op("Mul", "x0", []string{w, mean})
	for i := 0; i < n; i++ {
		x = g.Op("MatMul", fmt.Sprintf("x%d", i+1), []string{x, w})
	}
	total := g.Op("ReduceSum", "total", []string{x}, onnxpb.Int("keepdims", 0))
	nothing := g.Op("Mul", "nothing", []string{total, zero})
	g.Op("Add", "sum", []string{sum, nothing})
	vdir := filepath.Join(dir, name, version)
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	if err := m.WriteFile(filepath.Join(vdir, "model.onnx")); err != nil {
		return err
	}
	man := catalog.Manifest{
		Name: name, Version: version, Description: "test model: echo after a chain of matrix products",
		Inputs:       []catalog.IOSpec{{Name: "data", DType: "uint8", Shape: []int64{-1, -1}}},
		Outputs:      []catalog.IOSpec{{Name: "sum", DType: "float32", Shape: []int64{-1}}},
		ContentTypes: []string{"*/*"},
		Preprocess:   catalog.Preprocess{Kind: "bytes", MaxLen: 4096},
		Postprocess:  catalog.Postprocess{Kind: "echo"},
		MaxBatch:     8,
	}
	b, err := yaml.Marshal(man)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(vdir, catalog.ManifestFile), b, 0o644)
}
