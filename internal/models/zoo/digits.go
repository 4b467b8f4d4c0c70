package zoo

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/onnxpb"
)

// digitsCSV is the UCI optical digits data (see data/README.md).
//
//go:embed data/digits.csv.gz
var digitsCSV []byte

// Digit is one 8x8 sample in row-major order, each pixel 0..16 (ink high,
// background 0).
type Digit [64]uint8

// The digits model's fixed choices; changing any changes the model (and
// digitsKey, so that the zoo rebuilds it).
const (
	digitsSeed     = 1998 // the split, the initial weights, the sample order, the augmentation
	digitsHeldOut  = 0.2  // share of the samples held out of training
	digitsHidden   = 64
	digitsEpochs   = 60
	digitsBatch    = 32
	digitsLR       = 0.05
	digitsMomentum = 0.9
	digitsDecay    = 1e-4
	digitsRecipe   = 1 // bump when the training code changes
)

type digitsData struct {
	xs []Digit
	ys []int
}

var digitsParsed = sync.OnceValues(func() (digitsData, error) {
	xs, ys, err := parseDigits()
	return digitsData{xs, ys}, err
})

func digitsOnce() ([]Digit, []int, error) {
	d, err := digitsParsed()
	return d.xs, d.ys, err
}

func parseDigits() ([]Digit, []int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(digitsCSV))
	if err != nil {
		return nil, nil, fmt.Errorf("digits data: %w", err)
	}
	r := csv.NewReader(zr)
	r.FieldsPerRecord = 65
	r.ReuseRecord = true
	var xs []Digit
	var ys []int
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("digits data: %w", err)
		}
		var d Digit
		for i := range 64 {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil || v < 0 || v > 16 {
				return nil, nil, fmt.Errorf("digits data row %d: pixel %q", len(xs)+1, rec[i])
			}
			d[i] = uint8(v)
		}
		y, err := strconv.Atoi(rec[64])
		if err != nil || y < 0 || y > 9 {
			return nil, nil, fmt.Errorf("digits data row %d: label %q", len(xs)+1, rec[64])
		}
		xs = append(xs, d)
		ys = append(ys, y)
	}
	return xs, ys, nil
}

// digitsSplit is a seeded permutation of the samples: the first part
// trains, the rest is held out.
func digitsSplit() (train, heldOut []int, err error) {
	xs, _, err := digitsOnce()
	if err != nil {
		return nil, nil, err
	}
	perm := rand.New(rand.NewPCG(digitsSeed, 0)).Perm(len(xs))
	cut := len(xs) - int(math.Round(float64(len(xs))*digitsHeldOut))
	return perm[:cut], perm[cut:], nil
}

func digitsSubset(idx []int) ([]Digit, []int, error) {
	xs, ys, err := digitsOnce()
	if err != nil {
		return nil, nil, err
	}
	outX, outY := make([]Digit, len(idx)), make([]int, len(idx))
	for i, j := range idx {
		outX[i], outY[i] = xs[j], ys[j]
	}
	return outX, outY, nil
}

// DigitsHeldOut returns the samples the digits model never trained on
// (360 of the 1,797), with their labels, in a fixed order: what accuracy
// tests measure it on.
func DigitsHeldOut() ([]Digit, []int, error) {
	_, held, err := digitsSplit()
	if err != nil {
		return nil, nil, err
	}
	return digitsSubset(held)
}

// DigitsTrain returns the samples the digits model trains on.
func DigitsTrain() ([]Digit, []int, error) {
	train, _, err := digitsSplit()
	if err != nil {
		return nil, nil, err
	}
	return digitsSubset(train)
}

func digitsKey() string {
	h := sha256.Sum256(digitsCSV)
	return fmt.Sprintf("digits/%d/data=%s", digitsRecipe, hex.EncodeToString(h[:8]))
}

// mlp is the digits classifier: 64 inputs (pixels / 16) -> hidden ReLU ->
// 10 logits, weights row-major [out][in].
type mlp struct {
	w1, b1, w2, b2 []float64
}

func (n *mlp) forward(x []float64, h, out []float64) {
	for j := range digitsHidden {
		s := n.b1[j]
		row := n.w1[j*64 : (j+1)*64]
		for i, v := range x {
			s += row[i] * v
		}
		h[j] = max(s, 0)
	}
	for k := range 10 {
		s := n.b2[k]
		row := n.w2[k*digitsHidden : (k+1)*digitsHidden]
		for j, v := range h {
			s += row[j] * v
		}
		out[k] = s
	}
}

// predict classifies one sample given on the 0..16 scale.
func (n *mlp) predict(x []float64) int {
	in := make([]float64, 64)
	for i, v := range x {
		in[i] = v / 16
	}
	h, out := make([]float64, digitsHidden), make([]float64, 10)
	n.forward(in, h, out)
	best := 0
	for k, v := range out {
		if v > out[best] {
			best = k
		}
	}
	return best
}

// trainDigits trains the MLP with minibatch SGD with momentum and weight
// decay on augmented copies of the training samples. Everything random
// comes from one seeded PCG, and the arithmetic is sequential, so the
// result is the same on every run on a machine.
func trainDigits() (*mlp, error) {
	xs, ys, err := DigitsTrain()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(digitsSeed, 1))
	n := &mlp{
		w1: make([]float64, digitsHidden*64), b1: make([]float64, digitsHidden),
		w2: make([]float64, 10*digitsHidden), b2: make([]float64, 10),
	}
	for i := range n.w1 {
		n.w1[i] = rng.NormFloat64() * math.Sqrt(2.0/64)
	}
	for i := range n.w2 {
		n.w2[i] = rng.NormFloat64() * math.Sqrt(1.0/digitsHidden)
	}
	params := [][]float64{n.w1, n.b1, n.w2, n.b2}
	grads := make([][]float64, len(params))
	vel := make([][]float64, len(params))
	for i, p := range params {
		grads[i] = make([]float64, len(p))
		vel[i] = make([]float64, len(p))
	}
	gw1, gb1, gw2, gb2 := grads[0], grads[1], grads[2], grads[3]
	x := make([]float64, 64)
	h := make([]float64, digitsHidden)
	out := make([]float64, 10)
	dh := make([]float64, digitsHidden)
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	steps := digitsEpochs * ((len(xs) + digitsBatch - 1) / digitsBatch)
	step := 0
	for range digitsEpochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for start := 0; start < len(order); start += digitsBatch {
			batch := order[start:min(start+digitsBatch, len(order))]
			for _, g := range grads {
				clear(g)
			}
			for _, idx := range batch {
				augmentDigit(&xs[idx], x, rng)
				for i := range x {
					x[i] /= 16
				}
				n.forward(x, h, out)
				// Softmax cross-entropy: d logits = p - onehot.
				m := out[0]
				for _, v := range out[1:] {
					m = max(m, v)
				}
				var z float64
				for k, v := range out {
					out[k] = math.Exp(v - m)
					z += out[k]
				}
				for k := range out {
					out[k] /= z
				}
				out[ys[idx]]--
				clear(dh)
				for k, d := range out {
					gb2[k] += d
					row := n.w2[k*digitsHidden : (k+1)*digitsHidden]
					grow := gw2[k*digitsHidden : (k+1)*digitsHidden]
					for j, hv := range h {
						grow[j] += d * hv
						dh[j] += d * row[j]
					}
				}
				for j, d := range dh {
					if h[j] <= 0 {
						continue
					}
					gb1[j] += d
					grow := gw1[j*64 : (j+1)*64]
					for i, v := range x {
						grow[i] += d * v
					}
				}
			}
			// Cosine-decayed learning rate.
			lr := digitsLR * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(steps)))
			step++
			scale := 1 / float64(len(batch))
			for pi, p := range params {
				decay := digitsDecay
				if pi%2 == 1 { // biases
					decay = 0
				}
				g, v := grads[pi], vel[pi]
				for i := range p {
					v[i] = digitsMomentum*v[i] - lr*(g[i]*scale+decay*p[i])
					p[i] += v[i]
				}
			}
		}
	}
	return n, nil
}

// augmentDigit writes into x (0..16 scale) a perturbed copy of d: what a
// digit looks like after a trip through an upscaled image and the image
// preprocessing (resampling back to 8x8 blurs it and may shift it by a
// fraction of a pixel, and rounding to 8-bit and the contrast of the
// rendering change its levels). A third of the samples stay as they are.
func augmentDigit(d *Digit, x []float64, rng *rand.Rand) {
	if rng.IntN(3) == 0 {
		for i, v := range d {
			x[i] = float64(v)
		}
		return
	}
	dx, dy := 1.2*(rng.Float64()-0.5), 1.2*(rng.Float64()-0.5)
	at := func(r, c int) float64 {
		if r < 0 || r > 7 || c < 0 || c > 7 {
			return 0
		}
		return float64(d[r*8+c])
	}
	// Bilinear resampling at a sub-pixel offset.
	var tmp [64]float64
	for r := range 8 {
		for c := range 8 {
			sy, sx := float64(r)+dy, float64(c)+dx
			r0, c0 := int(math.Floor(sy)), int(math.Floor(sx))
			fy, fx := sy-float64(r0), sx-float64(c0)
			tmp[r*8+c] = (1-fy)*((1-fx)*at(r0, c0)+fx*at(r0, c0+1)) + fy*((1-fx)*at(r0+1, c0)+fx*at(r0+1, c0+1))
		}
	}
	// A separable blur [a, 1-2a, a] of random strength.
	if rng.IntN(2) == 0 {
		a := 0.25 * rng.Float64()
		blur := func(get func(i int) float64, set func(i int, v float64)) {
			var line [8]float64
			for i := range 8 {
				line[i] = get(i)
			}
			for i := range 8 {
				v := (1 - 2*a) * line[i]
				if i > 0 {
					v += a * line[i-1]
				}
				if i < 7 {
					v += a * line[i+1]
				}
				set(i, v)
			}
		}
		for r := range 8 {
			blur(func(i int) float64 { return tmp[r*8+i] }, func(i int, v float64) { tmp[r*8+i] = v })
		}
		for c := range 8 {
			blur(func(i int) float64 { return tmp[i*8+c] }, func(i int, v float64) { tmp[i*8+c] = v })
		}
	}
	gain := 0.85 + 0.3*rng.Float64()
	for i := range x {
		x[i] = min(max(tmp[i]*gain+0.3*rng.NormFloat64(), 0), 16)
	}
}

// DigitsModel trains the digits classifier and returns its graph: "x"
// float32 [N,1,8,8] on the data's 0..16 scale -> Flatten -> Gemm -> Relu ->
// Gemm -> "logits" float32 [N,10].
func DigitsModel() (*onnxpb.Model, error) {
	n, err := trainDigits()
	if err != nil {
		return nil, err
	}
	m := &onnxpb.Model{
		ProducerName:    "inferq-modelzoo",
		ProducerVersion: "1",
		Doc:             "MLP 64-64-10 trained by inferq on the UCI optical digits data (Alpaydin & Kaynak 1998, CC BY 4.0)",
		Graph:           onnxpb.Graph{Name: "digits"},
	}
	g := &m.Graph
	g.Inputs = []onnxpb.ValueInfo{{Name: "x", DType: onnxpb.Float, Shape: onnxpb.Shape("N", 1, 8, 8)}}
	g.Outputs = []onnxpb.ValueInfo{{Name: "logits", DType: onnxpb.Float, Shape: onnxpb.Shape("N", 10)}}
	// Training saw pixels / 16; the division is folded into the first layer.
	w1 := make([]float32, len(n.w1))
	for i, v := range n.w1 {
		w1[i] = float32(v / 16)
	}
	f32 := func(v []float64) []float32 {
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	}
	x := g.Op("Flatten", "flatten", []string{"x"}, onnxpb.Int("axis", 1))
	x = g.Op("Gemm", "fc1", []string{x,
		g.Init(onnxpb.FloatTensor("fc1.weight", []int64{digitsHidden, 64}, w1)),
		g.Init(onnxpb.FloatTensor("fc1.bias", []int64{digitsHidden}, f32(n.b1))),
	}, onnxpb.Int("transB", 1))
	x = g.Op("Relu", "relu", []string{x})
	g.Op("Gemm", "logits", []string{x,
		g.Init(onnxpb.FloatTensor("fc2.weight", []int64{10, digitsHidden}, f32(n.w2))),
		g.Init(onnxpb.FloatTensor("fc2.bias", []int64{10}, f32(n.b2))),
	}, onnxpb.Int("transB", 1))
	return m, nil
}

func digitsBundle() (*bundle, error) {
	m, err := DigitsModel()
	if err != nil {
		return nil, err
	}
	return &bundle{
		model: m,
		files: map[string][]byte{"labels.txt": []byte("0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n")},
		manifest: catalog.Manifest{
			Description:  "Handwritten digit classifier (MLP 64-64-10) trained by inferq on the UCI optical digits data (Alpaydin & Kaynak 1998, CC BY 4.0): an image of one digit, dark on light or light on dark, in; the digit out.",
			Inputs:       ioSpecs(m.Graph.Inputs),
			Outputs:      ioSpecs(m.Graph.Outputs),
			ContentTypes: []string{"image/*"},
			// The data is light ink (16) on a dark ground (0): invert
			// "auto" makes the upload's background dark, and 16/255
			// brings 0..255 to the data's 0..16.
			Preprocess: catalog.Preprocess{
				Kind: "image", Width: 8, Height: 8, Resize: "stretch", Color: "gray", Layout: "nchw",
				Invert: "auto", Scale: 16.0 / 255,
			},
			Postprocess: catalog.Postprocess{Kind: "topk", TopK: 3, Softmax: true},
			MaxBatch:    64,
			Files:       map[string]string{"labels": "labels.txt"},
		},
	}, nil
}
