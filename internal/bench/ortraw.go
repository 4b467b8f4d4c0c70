package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/ort"
)

const aboutORTRaw = "ONNX Runtime alone, in the harness's process, on the models' own ONNX files: one session with the intra-op threads a worker uses (every core, one instance), fed ready-made tensors (no decoding, no queue), at batch sizes 1, 8, 32 and 64. This is the limit of this machine for each model. Each round runs every model and batch size for a slice of time, in turn, so that drift spreads over all of them; the figure is the median over rounds."

// rawModel is a model's session opened by the harness.
type rawModel struct {
	name  string
	man   *catalog.Manifest
	sess  *ort.Session
	cache map[int][]ort.Tensor
}

func (e *env) openRaw(model string) (*rawModel, error) {
	man, err := catalog.Latest(filepath.Join(e.models, model))
	if err != nil || man == nil {
		return nil, fmt.Errorf("model %s: %v", model, err)
	}
	s, err := ort.Open(man.Path(man.File), ort.Options{IntraOpThreads: threads()})
	if err != nil {
		return nil, err
	}
	if len(man.Inputs) != len(s.Inputs) {
		s.Close()
		return nil, fmt.Errorf("model %s: manifest lists %d inputs, the graph %d", model, len(man.Inputs), len(s.Inputs))
	}
	return &rawModel{name: model, man: man, sess: s, cache: map[int][]ort.Tensor{}}, nil
}

func (m *rawModel) close() { _ = m.sess.Close() }

// inputs makes (once) a batch of n random inputs of the shapes the
// manifest declares (the graph may leave more than the batch dynamic: the
// ResNets take any image size, and the worker feeds them 224x224); a
// dimension still dynamic is a byte model's upload length.
func (m *rawModel) inputs(n int) ([]ort.Tensor, error) {
	if t, ok := m.cache[n]; ok {
		return t, nil
	}
	r := rand.New(rand.NewPCG(1, uint64(n)))
	var ts []ort.Tensor
	for k, in := range m.sess.Inputs {
		decl := m.man.Inputs[k].Shape
		shape := make([]int64, len(decl))
		elems := int64(1)
		for i, d := range decl {
			switch {
			case i == 0:
				d = int64(n)
			case d < 0 && m.man.Preprocess.Kind == "bytes":
				d = echoInputBytes
			case d < 0:
				return nil, fmt.Errorf("model %s input %s: dimension %d is dynamic in the manifest", m.name, in.Name, i)
			}
			shape[i] = d
			elems *= d
		}
		t := ort.Tensor{Shape: shape, DType: in.DType}
		switch in.DType {
		case ort.Float32:
			t.Float32 = make([]float32, elems)
			for i := range t.Float32 {
				t.Float32[i] = r.Float32()*2 - 1
			}
		case ort.Uint8:
			t.Uint8 = make([]uint8, elems)
			for i := range t.Uint8 {
				t.Uint8[i] = uint8(r.Uint32())
			}
		default:
			return nil, fmt.Errorf("model %s input %s: dtype %s", m.name, in.Name, in.DType)
		}
		ts = append(ts, t)
	}
	m.cache[n] = ts
	return ts, nil
}

// rate runs batches of n for about d (at least two runs, after one run to
// warm up) and returns inputs per second.
func (m *rawModel) rate(n int, d time.Duration) (float64, error) {
	in, err := m.inputs(n)
	if err != nil {
		return 0, err
	}
	if _, err := m.sess.Run(in); err != nil {
		return 0, fmt.Errorf("run %s at batch %d: %w", m.name, n, err)
	}
	start := time.Now()
	runs := 0
	for runs < 2 || time.Since(start) < d {
		if _, err := m.sess.Run(in); err != nil {
			return 0, err
		}
		runs++
	}
	return float64(runs*n) / time.Since(start).Seconds(), nil
}

func runORTRaw(ctx context.Context, e *env, r *Result) error {
	s := e.size
	type cell struct {
		model string
		batch int
	}
	opened := map[string]*rawModel{}
	defer func() {
		for _, m := range opened {
			m.close()
		}
	}()
	rates := map[cell][]float64{}
	var cells []cell
	for _, c := range s.RawCases {
		m, err := e.openRaw(c.Model)
		if err != nil {
			return err
		}
		opened[c.Model] = m
		for _, b := range c.Batches {
			cells = append(cells, cell{c.Model, b})
		}
	}
	for round := range s.RawRounds {
		for _, c := range cells {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v, err := opened[c.model].rate(c.batch, s.RawSlice)
			if err != nil {
				return err
			}
			rates[c] = append(rates[c], v)
		}
		e.logf("ort-raw round %d/%d done", round+1, s.RawRounds)
	}
	for _, c := range s.RawCases {
		b1 := median(rates[cell{c.Model, c.Batches[0]}])
		best, bestB := 0.0, 0
		for _, b := range c.Batches {
			v := median(rates[cell{c.Model, b}])
			if v > best {
				best, bestB = v, b
			}
			if b != c.Batches[0] {
				r.ratio(fmt.Sprintf("%s_b%d_over_b%d", c.Model, b, c.Batches[0]), v/b1,
					fmt.Sprintf("%s inputs/s at batch %d over batch %d", c.Model, b, c.Batches[0]))
			}
		}
		for _, b := range c.Batches {
			r.figure(fmt.Sprintf("%s_b%d_per_s", c.Model, b), median(rates[cell{c.Model, b}]), "inputs/s (median of rounds)")
		}
		r.note(fmt.Sprintf("%s: best at batch %d (%.1f inputs/s)", c.Model, bestB, best))
	}
	r.figure("intra_op_threads", float64(threads()), "ONNX Runtime threads (as the worker)")
	var rows []string
	for _, c := range cells {
		var vs []string
		for _, v := range rates[c] {
			vs = append(vs, fmtVal(v))
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %s |", c.model, c.batch, strings.Join(vs, ", ")))
	}
	r.addSection("Each round", "| model | batch | inputs/s by round |\n|---|---:|---|\n"+strings.Join(rows, "\n"))
	return nil
}
