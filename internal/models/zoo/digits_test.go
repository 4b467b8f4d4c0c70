package zoo

import (
	"bytes"
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/inferq/inferq/internal/ort"
)

func TestDigitsSplit(t *testing.T) {
	train, ytrain, err := DigitsTrain()
	if err != nil {
		t.Fatal(err)
	}
	held, yheld, err := DigitsHeldOut()
	if err != nil {
		t.Fatal(err)
	}
	if len(train)+len(held) != 1797 || len(held) != 359 && len(held) != 360 || len(ytrain) != len(train) || len(yheld) != len(held) {
		t.Fatalf("split %d + %d", len(train), len(held))
	}
	var counts [10]int
	for _, y := range yheld {
		counts[y]++
	}
	for d, c := range counts {
		if c < 20 {
			t.Errorf("held-out has %d samples of %d", c, d)
		}
	}
}

// roundTrip renders d as an 8-bit gray image scaled up by `up` (light
// strokes, as the data has them; the preprocessing's invert "auto" undoes
// the other polarity), then scales it back to 8x8 and returns it on the
// model's 0..16 scale: what the image preprocessing hands the model.
func roundTrip(d *Digit, up int, upK, downK draw.Interpolator) [64]float32 {
	small := image.NewGray(image.Rect(0, 0, 8, 8))
	for i, v := range d {
		small.Pix[i] = uint8(math.Round(float64(v) * 255 / 16))
	}
	big := image.NewGray(image.Rect(0, 0, 8*up, 8*up))
	upK.Scale(big, big.Bounds(), small, small.Bounds(), draw.Src, nil)
	back := image.NewGray(image.Rect(0, 0, 8, 8))
	downK.Scale(back, back.Bounds(), big, big.Bounds(), draw.Src, nil)
	var out [64]float32
	for i, v := range back.Pix {
		out[i] = float32(v) * 16 / 255
	}
	return out
}

func TestDigitsAccuracy(t *testing.T) {
	start := time.Now()
	m, err := DigitsModel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained in %v", time.Since(start))
	initORT(t)
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	s, err := ort.Open(path, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held, labels, err := DigitsHeldOut()
	if err != nil {
		t.Fatal(err)
	}
	accuracy := func(xs [][64]float32) float64 {
		t.Helper()
		data := make([]float32, 0, len(xs)*64)
		for _, x := range xs {
			data = append(data, x[:]...)
		}
		out, err := s.Run([]ort.Tensor{{Shape: []int64{int64(len(xs)), 1, 8, 8}, DType: ort.Float32, Float32: data}})
		if err != nil {
			t.Fatal(err)
		}
		right := 0
		for i, y := range labels {
			row := out[0].Float32[i*10 : (i+1)*10]
			best := 0
			for k, v := range row {
				if v > row[best] {
					best = k
				}
			}
			if best == y {
				right++
			}
		}
		return float64(right) / float64(len(labels))
	}

	plain := make([][64]float32, len(held))
	for i, d := range held {
		for j, v := range d {
			plain[i][j] = float32(v)
		}
	}
	acc := accuracy(plain)
	t.Logf("held-out accuracy (%d samples, 8x8 as in the data): %.2f%%", len(held), 100*acc)
	if acc < 0.95 {
		t.Errorf("held-out accuracy %.2f%% < 95%%", 100*acc)
	}
	trips := []struct {
		name     string
		up       int
		upK, dnK draw.Interpolator
	}{
		{"64x64 nearest up, approx-bilinear down", 8, draw.NearestNeighbor, draw.ApproxBiLinear},
		{"64x64 nearest up, bilinear down", 8, draw.NearestNeighbor, draw.BiLinear},
		{"64x64 bilinear up, bilinear down", 8, draw.BiLinear, draw.BiLinear},
		{"64x64 bilinear up, approx-bilinear down", 8, draw.BiLinear, draw.ApproxBiLinear},
		{"64x64 nearest up, catmull-rom down", 8, draw.NearestNeighbor, draw.CatmullRom},
		{"64x64 catmull-rom up, catmull-rom down", 8, draw.CatmullRom, draw.CatmullRom},
		{"100x100 bilinear up, bilinear down", 12, draw.BiLinear, draw.BiLinear},
		{"60x60 nearest up, bilinear down", 7, draw.NearestNeighbor, draw.BiLinear},
	}
	for _, tr := range trips {
		xs := make([][64]float32, len(held))
		for i := range held {
			xs[i] = roundTrip(&held[i], tr.up, tr.upK, tr.dnK)
		}
		acc := accuracy(xs)
		t.Logf("held-out accuracy after %s: %.2f%%", tr.name, 100*acc)
		if acc < 0.95 {
			t.Errorf("held-out accuracy after %s: %.2f%% < 95%%", tr.name, 100*acc)
		}
	}
}

func TestDigitsManifestAndDeterminism(t *testing.T) {
	m, s := openBuilt(t, "digits")
	p := m.Preprocess
	if p.Kind != "image" || p.Width != 8 || p.Height != 8 || p.Color != "gray" || p.Layout != "nchw" || p.Invert != "auto" || math.Abs(float64(p.Scale)-16.0/255) > 1e-6 {
		t.Fatalf("preprocess: %+v", p)
	}
	if m.Postprocess.Kind != "topk" || m.Postprocess.TopK != 3 || !m.Postprocess.Softmax || m.Files["labels"] != "labels.txt" {
		t.Fatalf("postprocess: %+v, files %v", m.Postprocess, m.Files)
	}
	if s.Inputs[0].Name != "x" || len(s.Outputs) != 1 || s.Outputs[0].Shape[1] != 10 {
		t.Fatalf("graph io: %+v -> %+v", s.Inputs, s.Outputs)
	}
	// Training again makes the same bytes.
	again, err := DigitsModel()
	if err != nil {
		t.Fatal(err)
	}
	b, err := again.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(m.Path(m.File))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, disk) {
		t.Fatal("training the digits model twice made different models")
	}
}
