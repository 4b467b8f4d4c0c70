package zoo

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/ort"
)

// TestResNetMatchesReference writes each ResNet, runs it in ONNX Runtime on
// a small batch, and compares with the Go reference interpreter evaluating
// the same in-memory graph.
func TestResNetMatchesReference(t *testing.T) {
	for _, depth := range []int{18, 50} {
		t.Run(map[int]string{18: "resnet18", 50: "resnet50"}[depth], func(t *testing.T) {
			initORT(t)
			start := time.Now()
			m, err := ResNet(depth, resnetSeed)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := m.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			t.Logf("generated and wrote in %v", time.Since(start))
			s, err := ort.Open(path, ort.Options{IntraOpThreads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			const n, h, w = 2, 64, 64
			rng := rand.New(rand.NewPCG(1, 2))
			x := make([]float32, n*3*h*w)
			for i := range x {
				// What the ImageNet preprocessing makes of pixels: about N(0,1).
				x[i] = float32((rng.Float64() - 0.45) / 0.226)
			}
			start = time.Now()
			got, err := s.Run([]ort.Tensor{{Shape: []int64{n, 3, h, w}, DType: ort.Float32, Float32: x}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("onnx runtime in %v", time.Since(start))
			start = time.Now()
			ref, err := refEval(&m.Graph, map[string]refTensor{"input": {[]int{n, 3, h, w}, x}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("reference in %v", time.Since(start))
			want := ref["logits"]
			if len(got[0].Float32) != n*1000 || len(want.data) != n*1000 {
				t.Fatalf("logits: got %v elements, reference %v", got[0].Shape, want.shape)
			}
			var maxAbs, maxDiff, maxRel float64
			for _, v := range want.data {
				maxAbs = max(maxAbs, math.Abs(float64(v)))
			}
			for i, v := range want.data {
				d := math.Abs(float64(got[0].Float32[i]) - float64(v))
				maxDiff = max(maxDiff, d)
				// Relative to the element, floored at 1% of the largest
				// logit so that near-zero logits do not divide by ~0.
				maxRel = max(maxRel, d/max(math.Abs(float64(v)), 0.01*maxAbs))
			}
			t.Logf("logits max |ref| %.4g, max abs diff %.3g, max rel error %.3g", maxAbs, maxDiff, maxRel)
			if maxAbs < 1e-3 || maxAbs > 1e4 {
				t.Errorf("logits out of a sane range: max |logit| %g", maxAbs)
			}
			if maxRel > 1e-3 {
				t.Errorf("ONNX Runtime and the reference differ: max rel error %g > 1e-3", maxRel)
			}
		})
	}
}

func TestResNetManifest(t *testing.T) {
	m, s := openBuilt(t, "resnet18")
	p := m.Preprocess
	if p.Kind != "image" || p.Width != 224 || p.Height != 224 || p.Resize != "crop" || p.Color != "rgb" || p.Layout != "nchw" || len(p.Mean) != 3 || len(p.Std) != 3 {
		t.Fatalf("preprocess: %+v", p)
	}
	if m.Postprocess.Kind != "topk" || m.Postprocess.TopK != 5 || !m.Postprocess.Softmax || m.Files["labels"] != "labels.txt" {
		t.Fatalf("postprocess: %+v files %v", m.Postprocess, m.Files)
	}
	// The declared 224x224 input runs.
	x := make([]float32, 1*3*224*224)
	out, err := s.Run([]ort.Tensor{{Shape: []int64{1, 3, 224, 224}, DType: ort.Float32, Float32: x}})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Shape[0] != 1 || out[0].Shape[1] != 1000 {
		t.Fatalf("logits shape %v", out[0].Shape)
	}
}
