package models

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/inferq/inferq/internal/models/catalog"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"

	"github.com/inferq/inferq/internal/models/preprocess"
	"github.com/inferq/inferq/internal/ort"
)

// tensorPipeline serves models whose one input is a tensor made from an
// image or a tensor upload, and whose output is read by top-k or raw.
type tensorPipeline struct {
	man    *catalog.Manifest
	image  *preprocess.ImageSpec
	tensor *preprocess.TensorSpec
	dtype  ort.DType
	labels []string
	// buffers pools the batch tensors, so that a busy worker does not
	// allocate one per batch.
	buffers sync.Pool
}

type tensorSample struct {
	values []float32
	shape  []int64
}

func newTensorPipeline(man *catalog.Manifest, _ ort.Options) (pipeline, error) {
	if len(man.Inputs) != 1 {
		return nil, fmt.Errorf("%s preprocessing feeds one input; the manifest declares %d", man.Preprocess.Kind, len(man.Inputs))
	}
	p := &tensorPipeline{man: man, dtype: ort.DType(man.Inputs[0].DType)}
	switch p.dtype {
	case ort.Float32, ort.Int64, ort.Uint8:
	default:
		return nil, fmt.Errorf("input dtype %q: want float32, int64 or uint8", p.dtype)
	}
	pp := man.Preprocess
	switch pp.Kind {
	case "image":
		spec := preprocess.ImageSpec{
			Width: pp.Width, Height: pp.Height, Resize: pp.Resize, Color: pp.Color, Layout: pp.Layout,
			Scale: pp.Scale, Mean: pp.Mean, Std: pp.Std, PadValue: pp.PadValue, Invert: pp.Invert,
		}
		if err := spec.Validate(); err != nil {
			return nil, err
		}
		p.image = &spec
	case "tensor":
		shape := man.Inputs[0].Shape
		if len(shape) == 0 {
			return nil, errors.New("tensor input needs a shape with a batch dimension")
		}
		spec := preprocess.TensorSpec{DType: string(p.dtype), Shape: shape[1:]}
		if err := spec.Validate(); err != nil {
			return nil, err
		}
		p.tensor = &spec
	default:
		return nil, fmt.Errorf("preprocess kind %q is not a tensor kind", pp.Kind)
	}
	switch man.Postprocess.Kind {
	case "topk":
		if f := man.Files["labels"]; f != "" {
			labels, err := readLines(man.Path(f))
			if err != nil {
				return nil, fmt.Errorf("labels: %w", err)
			}
			p.labels = labels
		}
	case "raw":
	default:
		return nil, fmt.Errorf("postprocess %q does not go with %s preprocessing", man.Postprocess.Kind, pp.Kind)
	}
	return p, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

func inputError(err error) error {
	if code := preprocess.CodeOf(err); code != "" {
		return &InputError{Code: code, Message: err.Error()}
	}
	return err
}

func (p *tensorPipeline) prepare(in Input) (Sample, error) {
	if p.image != nil {
		img, _, err := preprocess.DecodeImage(in.Data, p.man.Preprocess.MaxPixels)
		if err != nil {
			return nil, inputError(err)
		}
		vals := make([]float32, p.image.Len())
		if err := p.image.Fill(vals, img); err != nil {
			return nil, inputError(err)
		}
		return tensorSample{values: vals, shape: p.image.Shape()}, nil
	}
	vals, shape, err := preprocess.ParseTensor(in.Data, in.ContentType, *p.tensor, preprocess.DefaultMaxElems)
	if err != nil {
		return nil, inputError(err)
	}
	return tensorSample{values: vals, shape: shape}, nil
}

// run stacks the samples into one batch tensor (samples of differing
// shapes, possible with dynamic dimensions, run as separate groups).
func (p *tensorPipeline) run(s *ort.Session, batch []Sample) ([]Outcome, error) {
	out := make([]Outcome, len(batch))
	done := make([]bool, len(batch))
	for i := range batch {
		if done[i] {
			continue
		}
		shape := batch[i].(tensorSample).shape
		var group []int
		for j := i; j < len(batch); j++ {
			if !done[j] && slices.Equal(batch[j].(tensorSample).shape, shape) {
				group = append(group, j)
				done[j] = true
			}
		}
		res, err := p.runGroup(s, batch, group, shape)
		if err != nil {
			return nil, err
		}
		for k, j := range group {
			out[j] = res[k]
		}
	}
	return out, nil
}

func (p *tensorPipeline) runGroup(s *ort.Session, batch []Sample, group []int, shape []int64) ([]Outcome, error) {
	per := 1
	for _, d := range shape {
		per *= int(d)
	}
	n := len(group)
	bufp, _ := p.buffers.Get().(*[]float32)
	if bufp == nil || cap(*bufp) < n*per {
		b := make([]float32, n*per)
		bufp = &b
	}
	defer p.buffers.Put(bufp)
	buf := (*bufp)[:n*per]
	for k, j := range group {
		copy(buf[k*per:], batch[j].(tensorSample).values)
	}
	in := ort.Tensor{Shape: append([]int64{int64(n)}, shape...), DType: p.dtype}
	switch p.dtype {
	case ort.Float32:
		in.Float32 = buf
	case ort.Int64:
		in.Int64 = make([]int64, len(buf))
		for i, v := range buf {
			in.Int64[i] = int64(v)
		}
	case ort.Uint8:
		in.Uint8 = make([]uint8, len(buf))
		for i, v := range buf {
			in.Uint8[i] = uint8(v)
		}
	}
	outs, err := s.Run([]ort.Tensor{in})
	if err != nil {
		return nil, err
	}
	if p.man.Postprocess.Kind == "raw" {
		return rawOutcomes(s, outs, n)
	}
	return p.topk(outs[0], n)
}

// Class is one entry of a top-k answer.
type Class struct {
	Label string  `json:"label"`
	Score float32 `json:"score"`
}

// topk reads scores [N, C] into {"label", "score", "top": [...]} per row.
func (p *tensorPipeline) topk(t ort.Tensor, n int) ([]Outcome, error) {
	if t.DType != ort.Float32 || len(t.Shape) != 2 || t.Shape[0] != int64(n) {
		return nil, fmt.Errorf("top-k needs float32 scores [N, C], got %s %v", t.DType, t.Shape)
	}
	c := int(t.Shape[1])
	k := p.man.Postprocess.TopK
	if k <= 0 || k > c {
		k = min(5, c)
	}
	out := make([]Outcome, n)
	row := make([]float32, c)
	idx := make([]int, c)
	for i := 0; i < n; i++ {
		copy(row, t.Float32[i*c:(i+1)*c])
		if p.man.Postprocess.Softmax {
			softmax(row)
		}
		for j := range idx {
			idx[j] = j
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case row[a] > row[b]:
				return -1
			case row[a] < row[b]:
				return 1
			}
			return 0
		})
		top := make([]Class, k)
		for j := 0; j < k; j++ {
			top[j] = Class{Label: p.label(idx[j]), Score: row[idx[j]]}
		}
		out[i].Result, _ = json.Marshal(map[string]any{"label": top[0].Label, "score": top[0].Score, "top": top})
	}
	return out, nil
}

func (p *tensorPipeline) label(i int) string {
	if i < len(p.labels) {
		return p.labels[i]
	}
	return strconv.Itoa(i)
}

func softmax(v []float32) {
	m := float32(math.Inf(-1))
	for _, x := range v {
		m = max(m, x)
	}
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - m))
		v[i] = float32(e)
		sum += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
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
