package ocr

import (
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/inferq/inferq/internal/ort"
)

func TestDetSize(t *testing.T) {
	for _, c := range []struct{ w, h, max, dw, dh int }{
		{1, 1, 960, 32, 32},
		{640, 480, 960, 640, 480},
		{1920, 1080, 960, 960, 544},
		{100000, 3, 960, 960, 32},
		{500, 330, 960, 512, 320},
	} {
		if dw, dh := DetSize(c.w, c.h, c.max); dw != c.dw || dh != c.dh {
			t.Errorf("DetSize(%d, %d, %d) = %d x %d, want %d x %d", c.w, c.h, c.max, dw, dh, c.dw, c.dh)
		}
	}
}

func TestDetInputNormalization(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 32))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 255, 0, 128, 255
	}
	in, h, w := DetInput(img, 960)
	if h != 32 || w != 64 || len(in) != 3*h*w {
		t.Fatalf("got %d values for %d x %d", len(in), w, h)
	}
	// Channels R, G, B, each (v/255 - mean)/std.
	want := []float32{(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128.0/255 - 0.406) / 0.225}
	for c := 0; c < 3; c++ {
		if got := in[c*h*w+h*w/2]; math.Abs(float64(got-want[c])) > 1e-4 {
			t.Errorf("channel %d: %v, want %v", c, got, want[c])
		}
	}
	// Transparent pixels read as white.
	if in, _, _ := DetInput(image.NewNRGBA(image.Rect(0, 0, 4, 4)), 960); math.Abs(float64(in[0]-(1-0.485)/0.229)) > 1e-4 {
		t.Errorf("transparent pixel: %v, want white", in[0])
	}
	if in, h, w := DetInput(image.NewGray(image.Rect(0, 0, 0, 5)), 960); in != nil || h != 0 || w != 0 {
		t.Error("an empty image must give no tensor")
	}
}

func TestBoxesFromProbabilityMap(t *testing.T) {
	const h, w = 64, 128
	prob := make([]float32, h*w)
	fill := func(x0, x1, y0, y1 int, v float32) {
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				prob[y*w+x] = v
			}
		}
	}
	fill(20, 80, 10, 15, 0.9)   // a line of text
	fill(10, 60, 40, 44, 0.9)   // a lower one
	fill(100, 101, 40, 41, 0.9) // a speck: shorter side under MinSize
	fill(90, 120, 50, 58, 0.4)  // a faint region: above Thresh, under BoxThresh
	p := DefaultParams()
	p.UnclipRatio = 1.5
	// The page was twice the map's size.
	qs := Boxes(prob, h, w, 2*w, 2*h, p)
	if len(qs) != 2 {
		t.Fatalf("%d boxes, want 2: %v", len(qs), qs)
	}
	// First box: pixel centres 20..80 x 10..15 make a 60 x 5 rectangle;
	// unclip moves each side out by 300*1.5/130, then x2 to page pixels.
	d := unclipDistance(60, 5, 1.5)
	want := Quad{
		{int(math.Round((20 - d) * 2)), int(math.Round((10 - d) * 2))},
		{int(math.Round((80 + d) * 2)), int(math.Round((10 - d) * 2))},
		{int(math.Round((80 + d) * 2)), int(math.Round((15 + d) * 2))},
		{int(math.Round((20 - d) * 2)), int(math.Round((15 + d) * 2))},
	}
	if qs[0] != want {
		t.Fatalf("first box %v, want %v", qs[0], want)
	}
	if qs[1][0][1] <= qs[0][0][1] {
		t.Fatalf("boxes not top to bottom: %v", qs)
	}
	// Boxes are clipped to the page.
	prob = make([]float32, h*w)
	fill(0, 127, 0, 10, 0.95)
	for _, q := range Boxes(prob, h, w, w, h, p) {
		for _, c := range q {
			if c[0] < 0 || c[0] >= w || c[1] < 0 || c[1] >= h {
				t.Fatalf("corner %v outside the %d x %d page", c, w, h)
			}
		}
	}
}

func TestComponentsEightConnected(t *testing.T) {
	const h, w = 6, 8
	prob := make([]float32, h*w)
	for _, p := range [][2]int{{1, 1}, {2, 2}, {3, 3}, {6, 0}, {6, 1}, {0, 5}, {7, 5}} {
		prob[p[1]*w+p[0]] = 1
	}
	prob[4*w+4] = float32(math.NaN())
	if n := len(components(prob, h, w, 0.3)); n != 4 {
		t.Fatalf("%d components, want 4 (a diagonal, a column, two single pixels)", n)
	}
}

func TestBoxesNeverPanic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		h, w := 1+rng.IntN(40), 1+rng.IntN(40)
		prob := make([]float32, h*w)
		for k := range prob {
			switch rng.IntN(6) {
			case 0:
				prob[k] = float32(math.NaN())
			case 1, 2, 3:
				prob[k] = rng.Float32()
			}
		}
		ow, oh := 1+rng.IntN(300), 1+rng.IntN(300)
		for _, q := range Boxes(prob, h, w, ow, oh, DefaultParams()) {
			for _, c := range q {
				if c[0] < 0 || c[0] >= ow || c[1] < 0 || c[1] >= oh {
					t.Fatalf("corner %v outside %d x %d", c, ow, oh)
				}
			}
		}
	}
	if qs := Boxes(nil, 10, 10, 10, 10, DefaultParams()); qs != nil {
		t.Fatal("a short map must give no boxes")
	}
}

// fakeRunner stands in for a model: it answers with what fn makes of the
// input.
type fakeRunner func(in ort.Tensor) ([]ort.Tensor, error)

func (f fakeRunner) Run(in []ort.Tensor) ([]ort.Tensor, error) { return f(in[0]) }

// boxesDet marks as text every input pixel darker than mid-grey.
var boxesDet = fakeRunner(func(in ort.Tensor) ([]ort.Tensor, error) {
	h, w := int(in.Shape[2]), int(in.Shape[3])
	out := make([]float32, h*w)
	for i := range out {
		if in.Float32[i] < 0 {
			out[i] = 1
		}
	}
	return []ort.Tensor{{Shape: []int64{1, 1, int64(h), int64(w)}, DType: ort.Float32, Float32: out}}, nil
})

// constRec reads every line as "ab" with a step per 8 input columns.
var constRec = fakeRunner(func(in ort.Tensor) ([]ort.Tensor, error) {
	n, T, C := int(in.Shape[0]), int(in.Shape[3]/8), 4
	out := make([]float32, n*T*C)
	for k := 0; k < n; k++ {
		for t := 0; t < T; t++ {
			out[(k*T+t)*C+min(t, 2)] = 1
		}
	}
	return []ort.Tensor{{Shape: []int64{int64(n), int64(T), int64(C)}, DType: ort.Float32, Float32: out}}, nil
})

func TestRecognizeOddInputs(t *testing.T) {
	dict := []string{"a", "b"}
	solid := func(w, h int, c color.Gray) image.Image {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = c.Y
		}
		return img
	}
	for name, img := range map[string]image.Image{
		"1x1 black":   solid(1, 1, color.Gray{}),
		"1x1 white":   solid(1, 1, color.Gray{255}),
		"5000x2":      solid(5000, 2, color.Gray{}),
		"3x4000":      solid(3, 4000, color.Gray{}),
		"blank page":  solid(300, 200, color.Gray{255}),
		"black page":  solid(300, 200, color.Gray{}),
		"offset rect": image.NewRGBA(image.Rect(-5, 7, 40, 30)),
	} {
		res, err := Recognize(img, boxesDet, constRec, dict, Params{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if res.Lines == nil {
			t.Errorf("%s: lines must be an empty list, not null", name)
		}
		for _, l := range res.Lines {
			for _, c := range l.Box {
				if c[0] < 0 || c[0] >= img.Bounds().Dx() || c[1] < 0 || c[1] >= img.Bounds().Dy() {
					t.Errorf("%s: corner %v outside the image", name, c)
				}
			}
		}
	}
	if res, _ := Recognize(solid(300, 200, color.Gray{255}), boxesDet, constRec, dict, Params{}); len(res.Lines) != 0 {
		t.Errorf("a blank page gave lines: %+v", res)
	}
	if res, _ := Recognize(solid(300, 200, color.Gray{}), boxesDet, constRec, dict, Params{}); res.Text != "ab" {
		t.Errorf("a black page read %q, want the fake recognizer's \"ab\"", res.Text)
	}
	if _, err := Recognize(image.NewRGBA(image.Rect(0, 0, 0, 0)), boxesDet, constRec, dict, Params{}); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("empty image: %v, want ErrEmptyImage", err)
	}
	if _, err := Recognize(nil, boxesDet, constRec, dict, Params{}); !errors.Is(err, ErrEmptyImage) {
		t.Errorf("nil image: %v, want ErrEmptyImage", err)
	}
}

func TestRecognizeBadRunners(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 100, 50)) // all black: one region
	dict := []string{"a"}
	boom := fakeRunner(func(ort.Tensor) ([]ort.Tensor, error) { return nil, errors.New("boom") })
	short := fakeRunner(func(ort.Tensor) ([]ort.Tensor, error) {
		return []ort.Tensor{{Shape: []int64{1, 1, 2, 2}, DType: ort.Float32, Float32: make([]float32, 4)}}, nil
	})
	lying := fakeRunner(func(ort.Tensor) ([]ort.Tensor, error) {
		return []ort.Tensor{{Shape: []int64{1, 1 << 40, 1 << 40}, DType: ort.Float32, Float32: make([]float32, 4)}}, nil
	})
	for name, c := range map[string]struct{ det, rec Runner }{
		"det fails":        {boom, constRec},
		"det short output": {short, constRec},
		"rec fails":        {boxesDet, boom},
		"rec short output": {boxesDet, short},
		"rec lying shape":  {boxesDet, lying},
	} {
		if _, err := Recognize(img, c.det, c.rec, dict, Params{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(Result{Text: "hi", Lines: []Line{{Text: "hi", Score: 0.5, Box: [4][2]int{{1, 2}, {3, 2}, {3, 4}, {1, 4}}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"text":"hi","lines":[{"text":"hi","score":0.5,"box":[[1,2],[3,2],[3,4],[1,4]]}]}`
	if string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
}

func TestRecognizeQuadsMaxLinesAndOrder(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 200, 100))
	qs := []Quad{
		{{0, 0}, {100, 0}, {100, 20}, {0, 20}},
		{{0, 30}, {100, 30}, {100, 50}, {0, 50}},
		{{0, 60}, {100, 60}, {100, 80}, {0, 80}},
		{{5, 5}, {5, 5}, {5, 5}, {5, 5}}, // degenerate: skipped, not fatal
	}
	res, err := RecognizeQuads(img, qs, constRec, []string{"a", "b"}, Params{MaxLines: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Lines) != 2 || res.Lines[0].Box != qs[0] || res.Lines[1].Box != qs[1] || res.Text != "ab\nab" {
		t.Fatalf("got %+v", res)
	}
}
