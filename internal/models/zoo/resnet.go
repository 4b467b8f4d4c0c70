package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/onnxpb"
)

// resnetSeed fixes the untrained weights; changing it changes the models.
const resnetSeed = 20261129

// ImageNet's per-channel mean and standard deviation (RGB, on 0..1), as
// torchvision's ResNets expect their input normalized.
var (
	imageNetMean = []float32{0.485, 0.456, 0.406}
	imageNetStd  = []float32{0.229, 0.224, 0.225}
)

// ResNet builds torchvision's ResNet-18 (basic blocks [2,2,2,2]) or
// ResNet-50 (bottleneck blocks [3,4,6,3], stride on the 3x3 as in
// torchvision's v1.5) with untrained weights drawn from a PCG seeded with
// seed: He-normal convolutions, batch norms near identity with a small
// gamma on the last one of each residual branch (so activations neither
// vanish nor explode down the stack), and a uniform fully connected layer.
//
// Input "input" float32 [N,3,H,W] (224x224 as trained; any size of at
// least 32 runs), output "logits" float32 [N,1000].
func ResNet(depth int, seed uint64) (*onnxpb.Model, error) {
	var blocks []int
	bottleneck := false
	switch depth {
	case 18:
		blocks = []int{2, 2, 2, 2}
	case 34:
		blocks = []int{3, 4, 6, 3}
	case 50:
		blocks, bottleneck = []int{3, 4, 6, 3}, true
	case 101:
		blocks, bottleneck = []int{3, 4, 23, 3}, true
	default:
		return nil, fmt.Errorf("resnet depth %d: want 18, 34, 50 or 101", depth)
	}
	name := fmt.Sprintf("resnet%d", depth)
	b := &resnetBuilder{
		m: &onnxpb.Model{
			ProducerName:    "inferq-modelzoo",
			ProducerVersion: "1",
			Doc:             fmt.Sprintf("torchvision %s architecture with seeded untrained weights (seed %d); not a classifier", name, seed),
			Graph:           onnxpb.Graph{Name: name},
		},
		rng: rand.New(rand.NewPCG(seed, uint64(depth))),
	}
	g := &b.m.Graph
	g.Inputs = []onnxpb.ValueInfo{{Name: "input", DType: onnxpb.Float, Shape: onnxpb.Shape("N", 3, "H", "W")}}
	g.Outputs = []onnxpb.ValueInfo{{Name: "logits", DType: onnxpb.Float, Shape: onnxpb.Shape("N", 1000)}}

	x := b.convBN("conv1", "bn1", "input", 3, 64, 7, 2, 3, 1)
	x = g.Op("Relu", "relu", []string{x})
	x = g.Op("MaxPool", "maxpool", []string{x},
		onnxpb.Ints("kernel_shape", 3, 3), onnxpb.Ints("strides", 2, 2), onnxpb.Ints("pads", 1, 1, 1, 1))
	in := 64
	expansion := 1
	if bottleneck {
		expansion = 4
	}
	for li, n := range blocks {
		planes := 64 << li
		for bi := 0; bi < n; bi++ {
			stride := 1
			if bi == 0 && li > 0 {
				stride = 2
			}
			p := fmt.Sprintf("layer%d.%d", li+1, bi)
			identity := x
			var y string
			if bottleneck {
				y = b.convBN(p+".conv1", p+".bn1", x, in, planes, 1, 1, 0, 1)
				y = g.Op("Relu", p+".relu1", []string{y})
				y = b.convBN(p+".conv2", p+".bn2", y, planes, planes, 3, stride, 1, 1)
				y = g.Op("Relu", p+".relu2", []string{y})
				y = b.convBN(p+".conv3", p+".bn3", y, planes, planes*4, 1, 1, 0, residualGamma)
			} else {
				y = b.convBN(p+".conv1", p+".bn1", x, in, planes, 3, stride, 1, 1)
				y = g.Op("Relu", p+".relu1", []string{y})
				y = b.convBN(p+".conv2", p+".bn2", y, planes, planes, 3, 1, 1, residualGamma)
			}
			if stride != 1 || in != planes*expansion {
				identity = b.convBN(p+".downsample.0", p+".downsample.1", x, in, planes*expansion, 1, stride, 0, 1)
			}
			y = g.Op("Add", p+".add", []string{y, identity})
			x = g.Op("Relu", p+".relu", []string{y})
			in = planes * expansion
		}
	}
	x = g.Op("GlobalAveragePool", "avgpool", []string{x})
	x = g.Op("Flatten", "flatten", []string{x}, onnxpb.Int("axis", 1))
	bound := 1 / math.Sqrt(float64(in))
	w := g.Init(onnxpb.FloatTensor("fc.weight", []int64{1000, int64(in)}, b.uniform(1000*in, bound)))
	bias := g.Init(onnxpb.FloatTensor("fc.bias", []int64{1000}, b.uniform(1000, bound)))
	g.Op("Gemm", "logits", []string{x, w, bias}, onnxpb.Int("transB", 1))
	return b.m, nil
}

// residualGamma scales the last batch norm of each residual branch, as
// zero-init-residual does in spirit: each block adds a little to its
// identity, so the stack's activations stay in range without training.
const residualGamma = 0.2

type resnetBuilder struct {
	m   *onnxpb.Model
	rng *rand.Rand
}

// convBN adds a bias-free convolution and its batch norm and returns the
// norm's output.
func (b *resnetBuilder) convBN(conv, bn, x string, cin, cout, k, stride, pad int, gamma float64) string {
	g := &b.m.Graph
	std := math.Sqrt(2 / float64(cin*k*k))
	w := make([]float32, cout*cin*k*k)
	for i := range w {
		w[i] = float32(b.rng.NormFloat64() * std)
	}
	wn := g.Init(onnxpb.FloatTensor(conv+".weight", []int64{int64(cout), int64(cin), int64(k), int64(k)}, w))
	y := g.Op("Conv", conv, []string{x, wn},
		onnxpb.Ints("kernel_shape", int64(k), int64(k)),
		onnxpb.Ints("strides", int64(stride), int64(stride)),
		onnxpb.Ints("pads", int64(pad), int64(pad), int64(pad), int64(pad)))
	// Small seeded variations keep the norm from being an identity that a
	// writer bug (swapped scale and bias, say) could hide behind.
	scale, bias, mean, variance := make([]float32, cout), make([]float32, cout), make([]float32, cout), make([]float32, cout)
	for i := range cout {
		scale[i] = float32(gamma * (0.9 + 0.2*b.rng.Float64()))
		bias[i] = float32(0.05 * b.rng.NormFloat64())
		mean[i] = float32(0.05 * b.rng.NormFloat64())
		variance[i] = float32(0.8 + 0.4*b.rng.Float64())
	}
	dims := []int64{int64(cout)}
	return g.Op("BatchNormalization", bn, []string{
		y,
		g.Init(onnxpb.FloatTensor(bn+".weight", dims, scale)),
		g.Init(onnxpb.FloatTensor(bn+".bias", dims, bias)),
		g.Init(onnxpb.FloatTensor(bn+".running_mean", dims, mean)),
		g.Init(onnxpb.FloatTensor(bn+".running_var", dims, variance)),
	}, onnxpb.Float32("epsilon", 1e-5))
}

func (b *resnetBuilder) uniform(n int, bound float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((2*b.rng.Float64() - 1) * bound)
	}
	return out
}

// classLabels are the placeholder labels of an untrained ImageNet head.
func classLabels() []byte {
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "class_%d\n", i)
	}
	return []byte(sb.String())
}

func resnetBundle(depth int) (*bundle, error) {
	m, err := ResNet(depth, resnetSeed)
	if err != nil {
		return nil, err
	}
	return &bundle{
		model: m,
		files: map[string][]byte{"labels.txt": classLabels()},
		manifest: catalog.Manifest{
			Description:  fmt.Sprintf("ResNet-%d (torchvision architecture), UNTRAINED: fixed seeded weights (seed %d), for throughput work only; its top-5 labels class_0..class_999 mean nothing.", depth, resnetSeed),
			Inputs:       []catalog.IOSpec{{Name: "input", DType: "float32", Shape: []int64{-1, 3, 224, 224}}},
			Outputs:      ioSpecs(m.Graph.Outputs),
			ContentTypes: []string{"image/*"},
			Preprocess: catalog.Preprocess{
				Kind: "image", Width: 224, Height: 224, Resize: "crop", Color: "rgb", Layout: "nchw",
				Scale: 1.0 / 255, Mean: imageNetMean, Std: imageNetStd,
			},
			Postprocess: catalog.Postprocess{Kind: "topk", TopK: 5, Softmax: true},
			MaxBatch:    32,
			Files:       map[string]string{"labels": "labels.txt"},
		},
	}, nil
}
