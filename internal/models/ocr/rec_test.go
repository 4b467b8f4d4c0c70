package ocr

import (
	"fmt"
	"image"
	"math"
	"testing"

	"github.com/inferq/inferq/internal/ort"
)

func TestCutLineAxisAligned(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 10, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 10; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(x*20), uint8(y*30), 7, 255
		}
	}
	src, err := toRGB(img)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cutLine(src, Quad{{2, 1}, {6, 1}, {6, 4}, {2, 4}})
	if !ok || c.w != 4 || c.h != 3 {
		t.Fatalf("crop %dx%d ok=%v, want 4x3", c.w, c.h, ok)
	}
	for y := 0; y < c.h; y++ {
		for x := 0; x < c.w; x++ {
			px := c.pix[(y*c.w+x)*3:]
			if math.Abs(float64(px[0])-float64((x+2)*20)) > 1e-3 || math.Abs(float64(px[1])-float64((y+1)*30)) > 1e-3 || px[2] != 7 {
				t.Fatalf("crop (%d,%d) = %v, want page (%d,%d)", x, y, px[:3], x+2, y+1)
			}
		}
	}
	// A quad twice as tall as wide is a vertical line: turned to lie flat.
	c, ok = cutLine(src, Quad{{2, 0}, {4, 0}, {4, 6}, {2, 6}})
	if !ok || c.w != 6 || c.h != 2 {
		t.Fatalf("vertical crop %dx%d ok=%v, want 6x2", c.w, c.h, ok)
	}
	if _, ok := cutLine(src, Quad{{3, 3}, {3, 3}, {3, 3}, {3, 3}}); ok {
		t.Fatal("a point is no line")
	}
}

func TestRot90(t *testing.T) {
	// 3 wide, 2 high, one channel shown:  1 2 3 / 4 5 6.
	c := crop{w: 3, h: 2, pix: make([]float32, 18)}
	for i := 0; i < 6; i++ {
		c.pix[i*3] = float32(i + 1)
	}
	r := c.rot90()
	// Counterclockwise: 3 6 / 2 5 / 1 4.
	want := []float32{3, 6, 2, 5, 1, 4}
	if r.w != 2 || r.h != 3 {
		t.Fatalf("rotated %dx%d, want 2x3", r.w, r.h)
	}
	for i, v := range want {
		if r.pix[i*3] != v {
			t.Fatalf("rotated %v, want %v", r.pix, want)
		}
	}
}

func TestRecInputLayout(t *testing.T) {
	// Two flat crops of one colour each: 96x48 (ratio 2) and 48x24 (ratio 2).
	mk := func(w, h int, r, g, b float32) crop {
		c := crop{w: w, h: h, pix: make([]float32, w*h*3)}
		for i := 0; i < w*h; i++ {
			c.pix[i*3], c.pix[i*3+1], c.pix[i*3+2] = r, g, b
		}
		return c
	}
	in, n, width, _ := recInput([]crop{mk(96, 48, 255, 0, 51), mk(48, 24, 0, 255, 255)})
	if n != 2 || width != 96+recPad || len(in) != 2*3*48*width {
		t.Fatalf("n=%d width=%d len=%d, want 2, %d (the lines' width and recPad, no more)", n, width, len(in), 96+recPad)
	}
	plane := 48 * width
	// Channels B, G, R; (v/255-0.5)/0.5; 96 columns of line, then zeros.
	at := func(k, ch, y, x int) float32 { return in[k*3*plane+ch*plane+y*width+x] }
	if b, g, r := at(0, 0, 10, 50), at(0, 1, 10, 50), at(0, 2, 10, 50); math.Abs(float64(b-(-0.6))) > 1e-5 || g != -1 || r != 1 {
		t.Fatalf("B,G,R = %v,%v,%v, want -0.6,-1,1", b, g, r)
	}
	if at(0, 0, 10, 95) == 0 || at(0, 0, 10, 96) != 0 || at(1, 2, 47, width-1) != 0 {
		t.Fatal("padding must start right after the line's 96 columns and be 0")
	}
	// A line narrower than a square still gets a square run.
	_, _, width, _ = recInput([]crop{mk(10, 40, 0, 0, 0)})
	if width != recMinWidth {
		t.Fatalf("width %d, want %d", width, recMinWidth)
	}
	// A line of 40 heights (a full line of an A4 page) keeps its width; a
	// longer one than 100 heights is squeezed to 100.
	_, _, width, _ = recInput([]crop{mk(400, 10, 0, 0, 0)})
	if width != 48*40+recPad {
		t.Fatalf("width %d, want %d", width, 48*40+recPad)
	}
	_, _, width, _ = recInput([]crop{mk(5000, 10, 0, 0, 0)})
	if width != 48*100+recPad {
		t.Fatalf("width %d, want %d", width, 48*100+recPad)
	}
	// A long line gets recPad of padding beyond its end.
	_, _, width, _ = recInput([]crop{mk(480, 48, 0, 0, 0)})
	if width != 480+recPad {
		t.Fatalf("width %d, want %d", width, 480+recPad)
	}
}

// shapeRecorder is a recognizer that answers blank steps and notes the
// shape of each run.
type shapeRecorder struct{ runs [][2]int64 }

func (r *shapeRecorder) Run(in []ort.Tensor) ([]ort.Tensor, error) {
	n, w := in[0].Shape[0], in[0].Shape[3]
	r.runs = append(r.runs, [2]int64{n, w})
	return []ort.Tensor{{Shape: []int64{n, 1, 2}, DType: ort.Float32, Float32: make([]float32, n*2)}}, nil
}

// TestRecognitionRuns: lines go to the recognizer in runs of at most
// batch lines within spread of the narrowest's width, in order of width.
func TestRecognitionRuns(t *testing.T) {
	src, err := toRGB(image.NewRGBA(image.Rect(0, 0, 1200, 100)))
	if err != nil {
		t.Fatal(err)
	}
	// Lines 48 px high, 96 to 1008 wide: ratios 2, 2.1, 3, 20, 21.
	var quads []Quad
	for _, w := range []int{1008, 96, 144, 101, 960} {
		quads = append(quads, Quad{{0, 0}, {w, 0}, {w, 48}, {0, 48}})
	}
	none := func([]float32, int, int, lineInk) (string, float32) { return "", 0 }
	for _, tc := range []struct {
		batch  int
		spread float64
		want   [][2]int64 // lines, width of each run
	}{
		{6, 1.1, [][2]int64{{2, 101 + recPad}, {1, 144 + recPad}, {2, 1008 + recPad}}},
		{6, -1, [][2]int64{{5, 1008 + recPad}}},
		{1, -1, [][2]int64{{1, 96 + recPad}, {1, 101 + recPad}, {1, 144 + recPad}, {1, 960 + recPad}, {1, 1008 + recPad}}},
	} {
		var r shapeRecorder
		if _, _, err := recognizeLines(src, quads, &r, none, tc.batch, tc.spread); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(r.runs) != fmt.Sprint(tc.want) {
			t.Errorf("batch %d spread %v: runs (lines, width) %v, want %v", tc.batch, tc.spread, r.runs, tc.want)
		}
	}
}

// TestStretchContrast: a faint line (ink 110 on paper 190) is spread to
// black on white; a line of ordinary contrast is left as it is.
func TestStretchContrast(t *testing.T) {
	line := func(ink, paper float32) []float32 {
		px := make([]float32, 3*400)
		for i := range px {
			px[i] = paper
			if (i/3)%4 == 0 { // a quarter of the pixels are ink
				px[i] = ink
			}
		}
		return px
	}
	faint := line(110, 190)
	stretchContrast(faint)
	if faint[0] != 0 || faint[3] != 255 {
		t.Errorf("faint line: ink %v, paper %v; want 0 and 255", faint[0], faint[3])
	}
	plain := line(40, 230)
	stretchContrast(plain)
	if plain[0] != 40 || plain[3] != 230 {
		t.Errorf("line of ordinary contrast changed: ink %v, paper %v", plain[0], plain[3])
	}
}
