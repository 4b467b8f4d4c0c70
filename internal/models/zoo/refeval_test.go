package zoo

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/inferq/inferq/internal/models/onnxpb"
)

// refTensor is a float32 tensor of the reference interpreter.
type refTensor struct {
	shape []int
	data  []float32
}

// refEval runs g on the inputs with a plain Go implementation of each op
// the zoo emits, straight from the in-memory graph that the writer wrote,
// so that comparing it with ONNX Runtime checks the writer end to end.
// Sums accumulate in float64.
func refEval(g *onnxpb.Graph, inputs map[string]refTensor) (map[string]refTensor, error) {
	vals := map[string]refTensor{}
	for k, v := range inputs {
		vals[k] = v
	}
	for _, t := range g.Initializers {
		if t.DType != onnxpb.Float {
			continue
		}
		sh := make([]int, len(t.Dims))
		for i, d := range t.Dims {
			sh[i] = int(d)
		}
		vals[t.Name] = refTensor{sh, t.Float32}
	}
	in := func(n *onnxpb.Node, i int) refTensor { return vals[n.Inputs[i]] }
	for _, n := range g.Nodes {
		var out refTensor
		switch n.OpType {
		case "Conv":
			out = refConv(in(n, 0), in(n, 1), n.AttrInts("strides", []int64{1, 1}), n.AttrInts("pads", []int64{0, 0, 0, 0}))
		case "BatchNormalization":
			out = refBN(in(n, 0), in(n, 1), in(n, 2), in(n, 3), in(n, 4), float64(n.AttrFloat("epsilon", 1e-5)))
		case "Relu":
			x := in(n, 0)
			out = refTensor{x.shape, make([]float32, len(x.data))}
			for i, v := range x.data {
				out.data[i] = max(v, 0)
			}
		case "Add":
			a, b := in(n, 0), in(n, 1)
			if len(a.data) != len(b.data) {
				return nil, fmt.Errorf("%s: Add of %v and %v (no broadcasting here)", n.Name, a.shape, b.shape)
			}
			out = refTensor{a.shape, make([]float32, len(a.data))}
			for i := range a.data {
				out.data[i] = a.data[i] + b.data[i]
			}
		case "MaxPool":
			out = refMaxPool(in(n, 0), n.AttrInts("kernel_shape", nil), n.AttrInts("strides", []int64{1, 1}), n.AttrInts("pads", []int64{0, 0, 0, 0}))
		case "GlobalAveragePool":
			x := in(n, 0)
			nb, c, hw := x.shape[0], x.shape[1], x.shape[2]*x.shape[3]
			out = refTensor{[]int{nb, c, 1, 1}, make([]float32, nb*c)}
			for i := range nb * c {
				var s float64
				for _, v := range x.data[i*hw : (i+1)*hw] {
					s += float64(v)
				}
				out.data[i] = float32(s / float64(hw))
			}
		case "Flatten":
			x := in(n, 0)
			axis := int(n.AttrInt("axis", 1))
			a, b := 1, 1
			for i, d := range x.shape {
				if i < axis {
					a *= d
				} else {
					b *= d
				}
			}
			out = refTensor{[]int{a, b}, x.data}
		case "Gemm":
			out = refGemm(in(n, 0), in(n, 1), in(n, 2), n.AttrInt("transB", 0) != 0, float64(n.AttrFloat("alpha", 1)), float64(n.AttrFloat("beta", 1)))
		default:
			return nil, fmt.Errorf("%s: op %s not in the reference interpreter", n.Name, n.OpType)
		}
		vals[n.Outputs[0]] = out
	}
	res := map[string]refTensor{}
	for _, o := range g.Outputs {
		res[o.Name] = vals[o.Name]
	}
	return res, nil
}

// parallel runs fn(i) for i in [0, n) on all cores.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func refConv(x, w refTensor, strides, pads []int64) refTensor {
	nb, cin, h, wd := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	cout, kh, kw := w.shape[0], w.shape[2], w.shape[3]
	sh, sw := int(strides[0]), int(strides[1])
	pt, pl, pb, pr := int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])
	oh := (h+pt+pb-kh)/sh + 1
	ow := (wd+pl+pr-kw)/sw + 1
	out := refTensor{[]int{nb, cout, oh, ow}, make([]float32, nb*cout*oh*ow)}
	parallel(nb*cout, func(job int) {
		b, co := job/cout, job%cout
		acc := make([]float64, oh*ow)
		for ci := range cin {
			plane := x.data[(b*cin+ci)*h*wd : (b*cin+ci+1)*h*wd]
			for ky := range kh {
				for kx := range kw {
					wv := float64(w.data[((co*cin+ci)*kh+ky)*kw+kx])
					for oy := range oh {
						iy := oy*sh - pt + ky
						if iy < 0 || iy >= h {
							continue
						}
						row := plane[iy*wd : (iy+1)*wd]
						arow := acc[oy*ow : (oy+1)*ow]
						for ox := range ow {
							ix := ox*sw - pl + kx
							if ix >= 0 && ix < wd {
								arow[ox] += wv * float64(row[ix])
							}
						}
					}
				}
			}
		}
		dst := out.data[job*oh*ow : (job+1)*oh*ow]
		for i, v := range acc {
			dst[i] = float32(v)
		}
	})
	return out
}

func refBN(x, scale, bias, mean, variance refTensor, eps float64) refTensor {
	nb, c := x.shape[0], x.shape[1]
	hw := len(x.data) / (nb * c)
	out := refTensor{x.shape, make([]float32, len(x.data))}
	for b := range nb {
		for ch := range c {
			k := float64(scale.data[ch]) / math.Sqrt(float64(variance.data[ch])+eps)
			m, bi := float64(mean.data[ch]), float64(bias.data[ch])
			off := (b*c + ch) * hw
			for i := off; i < off+hw; i++ {
				out.data[i] = float32((float64(x.data[i])-m)*k + bi)
			}
		}
	}
	return out
}

func refMaxPool(x refTensor, kernel, strides, pads []int64) refTensor {
	nb, c, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	kh, kw, sh, sw := int(kernel[0]), int(kernel[1]), int(strides[0]), int(strides[1])
	pt, pl, pb, pr := int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])
	oh := (h+pt+pb-kh)/sh + 1
	ow := (w+pl+pr-kw)/sw + 1
	out := refTensor{[]int{nb, c, oh, ow}, make([]float32, nb*c*oh*ow)}
	for p := range nb * c {
		plane := x.data[p*h*w : (p+1)*h*w]
		for oy := range oh {
			for ox := range ow {
				m := float32(math.Inf(-1))
				for ky := range kh {
					iy := oy*sh - pt + ky
					if iy < 0 || iy >= h {
						continue
					}
					for kx := range kw {
						ix := ox*sw - pl + kx
						if ix >= 0 && ix < w {
							m = max(m, plane[iy*w+ix])
						}
					}
				}
				out.data[(p*oh+oy)*ow+ox] = m
			}
		}
	}
	return out
}

func refGemm(a, b, c refTensor, transB bool, alpha, beta float64) refTensor {
	m, k := a.shape[0], a.shape[1]
	var n int
	if transB {
		n = b.shape[0]
	} else {
		n = b.shape[1]
	}
	out := refTensor{[]int{m, n}, make([]float32, m*n)}
	for i := range m {
		for j := range n {
			var s float64
			for l := range k {
				var bv float32
				if transB {
					bv = b.data[j*k+l]
				} else {
					bv = b.data[l*n+j]
				}
				s += float64(a.data[i*k+l]) * float64(bv)
			}
			// C broadcasts along rows, as the zoo's biases do.
			out.data[i*n+j] = float32(alpha*s + beta*float64(c.data[j%len(c.data)]))
		}
	}
	return out
}
