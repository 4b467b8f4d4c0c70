package models

import (
	"encoding/json"
	"fmt"

	"github.com/inferq/inferq/internal/ort"
)

// newTensorPipeline builds the pipeline of a model whose input is one
// float32 tensor made from an image or a tensor upload.
func newTensorPipeline(man *Manifest, _ ort.Options) (pipeline, error) {
	return nil, fmt.Errorf("preprocess kind %q is not supported yet", man.Preprocess.Kind)
}

// rawOutcomes splits each output along its batch dimension and returns the
// slices as JSON: {"outputs": {name: {"shape", "data"}}}.
func rawOutcomes(s *ort.Session, outs []ort.Tensor, n int) ([]Outcome, error) {
	res := make([]Outcome, n)
	per := make([]map[string]any, n)
	for i := range per {
		per[i] = map[string]any{}
	}
	for k, t := range outs {
		if len(t.Shape) == 0 || t.Shape[0] != int64(n) {
			return nil, fmt.Errorf("output %s: shape %v has no batch dimension of %d", s.Outputs[k].Name, t.Shape, n)
		}
		stride := int(t.Elems()) / n
		for i := 0; i < n; i++ {
			var data any
			switch t.DType {
			case ort.Float32:
				data = t.Float32[i*stride : (i+1)*stride]
			case ort.Int64:
				data = t.Int64[i*stride : (i+1)*stride]
			case ort.Uint8:
				ints := make([]int, stride)
				for j, v := range t.Uint8[i*stride : (i+1)*stride] {
					ints[j] = int(v)
				}
				data = ints
			}
			per[i][s.Outputs[k].Name] = map[string]any{"shape": t.Shape[1:], "data": data}
		}
	}
	for i := range res {
		res[i].Result, _ = json.Marshal(map[string]any{"outputs": per[i]})
	}
	return res, nil
}
