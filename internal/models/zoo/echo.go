package zoo

import (
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/onnxpb"
)

// EchoModel is the echo graph: data uint8 [N, L] -> sum float32 [N], the
// sum of each row's bytes. Next to no compute, so that a job's latency
// through the fleet is the fleet's own overhead.
func EchoModel() *onnxpb.Model {
	m := &onnxpb.Model{ProducerName: "inferq-modelzoo", ProducerVersion: "1", Graph: onnxpb.Graph{Name: "echo"}}
	g := &m.Graph
	g.Inputs = []onnxpb.ValueInfo{{Name: "data", DType: onnxpb.Uint8, Shape: onnxpb.Shape("N", "L")}}
	g.Outputs = []onnxpb.ValueInfo{{Name: "sum", DType: onnxpb.Float, Shape: onnxpb.Shape("N")}}
	axes := g.Init(onnxpb.Int64Tensor("axes", []int64{1}, []int64{1}))
	f := g.Op("Cast", "data_f32", []string{"data"}, onnxpb.Int("to", int64(onnxpb.Float)))
	// Opset 13's ReduceSum takes its axes as an input.
	g.Op("ReduceSum", "sum", []string{f, axes}, onnxpb.Int("keepdims", 0))
	return m
}

func echoBundle() (*bundle, error) {
	m := EchoModel()
	return &bundle{
		model: m,
		manifest: catalog.Manifest{
			Description:  "Overhead probe: the sum of the uploaded bytes (input zero-padded to the batch's longest, at most max_len).",
			Inputs:       ioSpecs(m.Graph.Inputs),
			Outputs:      ioSpecs(m.Graph.Outputs),
			ContentTypes: []string{"*/*"},
			Preprocess:   catalog.Preprocess{Kind: "bytes", MaxLen: 4096},
			Postprocess:  catalog.Postprocess{Kind: "echo"},
			MaxBatch:     64,
			MaxWaitMS:    2,
		},
	}, nil
}
