package preprocess

import (
	"errors"
	"image"
	"image/color"
	"math"
	"testing"
)

// grayImage builds a gray image from rows of values.
func grayImage(rows ...[]uint8) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, len(rows[0]), len(rows)))
	for y, r := range rows {
		copy(m.Pix[y*m.Stride:], r)
	}
	return m
}

// rgb2x2 is the image most Fill tests use:
//
//	(10,20,30)   (40,50,60)
//	(70,80,90)   (100,110,120)
func rgb2x2() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	m.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 255})
	m.SetNRGBA(1, 0, color.NRGBA{40, 50, 60, 255})
	m.SetNRGBA(0, 1, color.NRGBA{70, 80, 90, 255})
	m.SetNRGBA(1, 1, color.NRGBA{100, 110, 120, 255})
	return m
}

func fill(t *testing.T, s ImageSpec, img image.Image) []float32 {
	t.Helper()
	dst := make([]float32, s.Len()+1) // one spare to catch overruns
	dst[len(dst)-1] = -12345
	if err := s.Fill(dst, img); err != nil {
		t.Fatalf("Fill(%+v): %v", s, err)
	}
	if dst[len(dst)-1] != -12345 {
		t.Fatalf("Fill wrote past Len()")
	}
	return dst[:s.Len()]
}

func assertFloats(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", name, len(got), got, len(want), want)
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-6 {
			t.Fatalf("%s: value %d is %v, want %v\ngot  %v\nwant %v", name, i, got[i], want[i], got, want)
		}
	}
}

func TestFillChannelsAndLayout(t *testing.T) {
	img := rgb2x2()
	cases := []struct {
		name string
		spec ImageSpec
		want []float32
	}{
		{"rgb nchw", ImageSpec{Width: 2, Height: 2, Scale: 1},
			[]float32{10, 40, 70, 100, 20, 50, 80, 110, 30, 60, 90, 120}},
		{"bgr nchw", ImageSpec{Width: 2, Height: 2, Scale: 1, Color: ColorBGR},
			[]float32{30, 60, 90, 120, 20, 50, 80, 110, 10, 40, 70, 100}},
		{"rgb nhwc", ImageSpec{Width: 2, Height: 2, Scale: 1, Layout: LayoutNHWC},
			[]float32{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}},
		{"bgr nhwc", ImageSpec{Width: 2, Height: 2, Scale: 1, Color: ColorBGR, Layout: LayoutNHWC},
			[]float32{30, 20, 10, 60, 50, 40, 90, 80, 70, 120, 110, 100}},
		// Luma (299R+587G+114B+500)/1000, integer division:
		// 18650/1000=18, 48650/1000=48, 78650/1000=78, 108650/1000=108.
		{"gray", ImageSpec{Width: 2, Height: 2, Scale: 1, Color: ColorGray},
			[]float32{18, 48, 78, 108}},
		{"gray nhwc", ImageSpec{Width: 2, Height: 2, Scale: 1, Color: ColorGray, Layout: LayoutNHWC},
			[]float32{18, 48, 78, 108}},
		// (v*0.5 - mean) / std per channel, mean [1 2 3], std [2 4 8]:
		// R 10→(5-1)/2=2, 40→19/2=9.5, 70→34/2=17, 100→49/2=24.5
		// G 20→(10-2)/4=2, 50→23/4=5.75, 80→38/4=9.5, 110→53/4=13.25
		// B 30→(15-3)/8=1.5, 60→27/8=3.375, 90→42/8=5.25, 120→57/8=7.125
		{"scale mean std", ImageSpec{Width: 2, Height: 2, Scale: 0.5, Mean: []float32{1, 2, 3}, Std: []float32{2, 4, 8}},
			[]float32{2, 9.5, 17, 24.5, 2, 5.75, 9.5, 13.25, 1.5, 3.375, 5.25, 7.125}},
		// BGR: Mean[0] and Std[0] belong to the first output channel, blue.
		// B 30→(15-1)/2=7, 60→29/2=14.5, 90→44/2=22, 120→59/2=29.5
		// R 10→(5-3)/8=0.25, 40→17/8=2.125, 70→32/8=4, 100→47/8=5.875
		{"bgr mean std", ImageSpec{Width: 2, Height: 2, Scale: 0.5, Color: ColorBGR, Mean: []float32{1, 2, 3}, Std: []float32{2, 4, 8}},
			[]float32{7, 14.5, 22, 29.5, 2, 5.75, 9.5, 13.25, 0.25, 2.125, 4, 5.875}},
		// One mean and std for all channels: (v*0.25 - 5) / 0.5.
		// 18→(4.5-5)/0.5=-1, 48→(12-5)/0.5=14, 78→(19.5-5)/0.5=29, 108→(27-5)/0.5=44
		{"gray single mean std", ImageSpec{Width: 2, Height: 2, Scale: 0.25, Color: ColorGray, Mean: []float32{5}, Std: []float32{0.5}},
			[]float32{-1, 14, 29, 44}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertFloats(t, c.name, fill(t, c.spec, img), c.want)
		})
	}
}

func TestFillDefaultScale(t *testing.T) {
	img := grayImage([]uint8{0, 255, 51})
	// Scale 0 means 1/255: 0→0, 255→1, 51→0.2; then (v-0.5)/0.5.
	got := fill(t, ImageSpec{Width: 3, Height: 1, Color: ColorGray, Mean: []float32{0.5}, Std: []float32{0.5}}, img)
	assertFloats(t, "default scale", got, []float32{-1, 1, -0.6})
}

func TestResampleBilinear(t *testing.T) {
	gray := ImageSpec{Color: ColorGray, Scale: 1}
	cases := []struct {
		name string
		img  *image.Gray
		w, h int
		want []float32
	}{
		// Enlarging 2→4: output centres map to source -0.25, 0.25, 0.75,
		// 1.25; the edge ones read only the nearest sample, the middle
		// ones 0.75/0.25 mixes: 0, 0.75*0+0.25*200=50, 150, 200.
		{"enlarge x", grayImage([]uint8{0, 200}), 4, 1, []float32{0, 50, 150, 200}},
		{"enlarge y", grayImage([]uint8{0}, []uint8{200}), 1, 4, []float32{0, 50, 150, 200}},
		// Shrinking 4→2: the triangle widens to support 2. Output 0 is
		// centred on 0.5: weights 0.75, 0.75, 0.25 for samples 0, 1, 2
		// (sum 1.75): 0.25*70/1.75 = 10. Output 1 is centred on 2.5:
		// weights 0.25, 0.75, 0.75 for 1, 2, 3: (0.75+0.75)*70/1.75 = 60.
		{"shrink x", grayImage([]uint8{0, 0, 70, 70}), 2, 1, []float32{10, 60}},
		{"shrink y", grayImage([]uint8{0}, []uint8{0}, []uint8{70}, []uint8{70}), 1, 2, []float32{10, 60}},
		// Separable: v(x,y) = a[x] + b[y] with a = [0 0 70 70] → [10 60]
		// and b = [0 0 35 35] → [5 30]; the result is their sum.
		{"shrink xy", grayImage(
			[]uint8{0, 0, 70, 70},
			[]uint8{0, 0, 70, 70},
			[]uint8{35, 35, 105, 105},
			[]uint8{35, 35, 105, 105}), 2, 2, []float32{15, 65, 40, 90}},
		// Same size is the identity.
		{"identity", grayImage([]uint8{1, 2, 3}, []uint8{4, 5, 6}), 3, 2, []float32{1, 2, 3, 4, 5, 6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := gray
			s.Width, s.Height = c.w, c.h
			assertFloats(t, c.name, fill(t, s, c.img), c.want)
			r := Resize(c.img, c.w, c.h)
			for i, v := range c.want {
				if p := r.Pix[4*i:][:4]; p[0] != uint8(v) || p[1] != uint8(v) || p[2] != uint8(v) || p[3] != 255 {
					t.Fatalf("Resize pixel %d = %v, want %v opaque", i, p, v)
				}
			}
		})
	}
}

func TestFillLetterbox(t *testing.T) {
	img := grayImage([]uint8{1, 2, 3, 4}, []uint8{5, 6, 7, 8})
	// 4x2 into 4x4: scale min(4/4, 4/2) = 1, content 4x2 at y = (4-2)/2 = 1;
	// rows 0 and 3 are padding.
	s := ImageSpec{Width: 4, Height: 4, Resize: ResizeLetterbox, Color: ColorGray, Scale: 1, PadValue: 9}
	assertFloats(t, "tall", fill(t, s, img), []float32{
		9, 9, 9, 9,
		1, 2, 3, 4,
		5, 6, 7, 8,
		9, 9, 9, 9,
	})
	// 2x4 into 4x4: content at x = 1, columns 0 and 3 padded.
	tall := grayImage([]uint8{1, 2}, []uint8{3, 4}, []uint8{5, 6}, []uint8{7, 8})
	assertFloats(t, "wide", fill(t, s, tall), []float32{
		9, 1, 2, 9,
		9, 3, 4, 9,
		9, 5, 6, 9,
		9, 7, 8, 9,
	})
	// 4x2 into 2x2: scale 0.5, content 2x1 at y = (2-1)/2 = 0. Columns
	// shrink [0 0 70 70] → [10 60] (see TestResampleBilinear), the two
	// equal rows average to themselves.
	shrink := grayImage([]uint8{0, 0, 70, 70}, []uint8{0, 0, 70, 70})
	s = ImageSpec{Width: 2, Height: 2, Resize: ResizeLetterbox, Color: ColorGray, Scale: 1, PadValue: 9}
	assertFloats(t, "shrink", fill(t, s, shrink), []float32{10, 60, 9, 9})
	// Padding goes through scale, mean and std like a pixel, on every
	// channel: (9*0.5 - 1) / 2 = 1.75 in RGB, NCHW.
	s = ImageSpec{Width: 2, Height: 2, Resize: ResizeLetterbox, Scale: 0.5, Mean: []float32{1}, Std: []float32{2}, PadValue: 9}
	// content 10→(5-1)/2=2, 60→(30-1)/2=14.5
	assertFloats(t, "normalised pad", fill(t, s, shrink), []float32{
		2, 14.5, 1.75, 1.75,
		2, 14.5, 1.75, 1.75,
		2, 14.5, 1.75, 1.75,
	})
}

func TestFillCrop(t *testing.T) {
	// 4x2 to 2x2: scale max(2/4, 2/2) = 1, so the centre two columns.
	img := grayImage([]uint8{1, 2, 3, 4}, []uint8{5, 6, 7, 8})
	s := ImageSpec{Width: 2, Height: 2, Resize: ResizeCrop, Color: ColorGray, Scale: 1}
	assertFloats(t, "no scaling", fill(t, s, img), []float32{2, 3, 6, 7})
	// Tall: 2x4 to 2x2 keeps rows 1 and 2.
	tall := grayImage([]uint8{1, 2}, []uint8{3, 4}, []uint8{5, 6}, []uint8{7, 8})
	assertFloats(t, "tall", fill(t, s, tall), []float32{3, 4, 5, 6})

	// 8x4 to 2x2: scale 0.5; resized it would be 4x2 and its centre
	// columns 1 and 2. Resizing [0 0 0 0 80 80 80 80] to 4 gives
	// [0 10 70 80] (output 1 centred on 2.5 reads samples 1..4 with
	// weights .25 .75 .75 .25: 80*.25/2 = 10; output 2 centred on 4.5
	// reads 3..6: 80*1.75/2 = 70), so the crop is [10 70] on each row;
	// the filter reads samples outside the crop window, as resizing
	// first would.
	row := []uint8{0, 0, 0, 0, 80, 80, 80, 80}
	wide := grayImage(row, row, row, row)
	assertFloats(t, "shrink", fill(t, s, wide), []float32{10, 70, 10, 70})
}

func TestFillStretch(t *testing.T) {
	// Stretch ignores aspect: 4x1 [0 0 70 70] to 2x3 is [10 60] on every row.
	img := grayImage([]uint8{0, 0, 70, 70})
	s := ImageSpec{Width: 2, Height: 3, Color: ColorGray, Scale: 1}
	assertFloats(t, "stretch", fill(t, s, img), []float32{10, 60, 10, 60, 10, 60})
}

func TestFillInvertAuto(t *testing.T) {
	// A dark stroke on white: the border (255) is lighter than the
	// centre, so everything flips.
	w, k := uint8(255), uint8(0)
	darkOnLight := grayImage(
		[]uint8{w, w, w, w, w},
		[]uint8{w, k, k, k, w},
		[]uint8{w, k, w, k, w},
		[]uint8{w, k, k, k, w},
		[]uint8{w, w, w, w, w},
	)
	s := ImageSpec{Width: 5, Height: 5, Color: ColorGray, Scale: 1, Invert: InvertAuto}
	assertFloats(t, "dark on light", fill(t, s, darkOnLight), []float32{
		0, 0, 0, 0, 0,
		0, 255, 255, 255, 0,
		0, 255, 0, 255, 0,
		0, 255, 255, 255, 0,
		0, 0, 0, 0, 0,
	})
	// Light on dark is left alone.
	lightOnDark := grayImage(
		[]uint8{k, k, k, k, k},
		[]uint8{k, w, w, w, k},
		[]uint8{k, w, k, w, k},
		[]uint8{k, w, w, w, k},
		[]uint8{k, k, k, k, k},
	)
	assertFloats(t, "light on dark", fill(t, s, lightOnDark), []float32{
		0, 0, 0, 0, 0,
		0, 255, 255, 255, 0,
		0, 255, 0, 255, 0,
		0, 255, 255, 255, 0,
		0, 0, 0, 0, 0,
	})
	// A blank image is never inverted.
	blank := grayImage([]uint8{w, w}, []uint8{w, w})
	s2 := ImageSpec{Width: 2, Height: 2, Color: ColorGray, Scale: 1, Invert: InvertAuto}
	assertFloats(t, "blank", fill(t, s2, blank), []float32{255, 255, 255, 255})
	// Letterbox padding keeps PadValue: the 5x5 content sits in rows 1..5
	// of a 5x7 output and is inverted; rows 0 and 6 stay 0.
	s.Height, s.Resize = 7, ResizeLetterbox
	got := fill(t, s, darkOnLight)
	assertFloats(t, "pad row 0", got[:5], []float32{0, 0, 0, 0, 0})
	assertFloats(t, "pad row 6", got[30:], []float32{0, 0, 0, 0, 0})
	assertFloats(t, "inverted row 2", got[10:15], []float32{0, 255, 255, 255, 0})
}

func TestFillAlphaOverWhite(t *testing.T) {
	n := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	n.SetNRGBA(0, 0, color.NRGBA{0, 0, 0, 0})     // transparent → white
	n.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 128}) // 255*128/255 + 127 = 255; 0 + 127
	r := image.NewRGBA(image.Rect(0, 0, 2, 1))
	r.SetRGBA(0, 0, color.RGBA{0, 0, 0, 0})
	r.SetRGBA(1, 0, color.RGBA{128, 0, 0, 128}) // premultiplied: 128 + 127; 0 + 127
	s := ImageSpec{Width: 2, Height: 1, Scale: 1}
	want := []float32{255, 255, 255, 127, 255, 127}
	assertFloats(t, "nrgba", fill(t, s, n), want)
	assertFloats(t, "rgba", fill(t, s, r), want)
}

// atOnly hides an image's concrete type, so Fill takes its At path.
type atOnly struct{ image.Image }

// TestFillPixelTypes checks every fast path against the generic At path
// on the same picture, with and without a bounds offset.
func TestFillPixelTypes(t *testing.T) {
	const w, h = 7, 5
	at := func(x, y int) (r, g, b uint8) { return uint8(30 * x), uint8(40 * y), uint8(10*x + 20*y) }
	r := image.Rect(3, 2, 3+w, 2+h)
	build := map[string]image.Image{}
	nrgba := image.NewNRGBA(r)
	rgba := image.NewRGBA(r)
	gray := image.NewGray(r)
	gray16 := image.NewGray16(r)
	nrgba64 := image.NewNRGBA64(r)
	cmyk := image.NewCMYK(r)
	pal := image.NewPaletted(r, nil)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb := at(x-r.Min.X, y-r.Min.Y)
			c := color.NRGBA{cr, cg, cb, uint8(100 + 20*x)}
			nrgba.Set(x, y, c)
			rgba.Set(x, y, c)
			nrgba64.Set(x, y, c)
			gray.Set(x, y, color.Gray{cr})
			gray16.Set(x, y, color.Gray{cr})
			cmyk.Set(x, y, color.NRGBA{cr, cg, cb, 255})
			pal.Palette = append(pal.Palette, c)
			pal.SetColorIndex(x, y, uint8(len(pal.Palette)-1))
		}
	}
	build["nrgba"], build["rgba"], build["gray"], build["gray16"] = nrgba, rgba, gray, gray16
	build["nrgba64"], build["cmyk"], build["paletted"] = nrgba64, cmyk, pal
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420} {
		y := image.NewYCbCr(r, ratio)
		a := image.NewNYCbCrA(r, ratio)
		for py := r.Min.Y; py < r.Max.Y; py++ {
			for px := r.Min.X; px < r.Max.X; px++ {
				cr, cg, cb := at(px-r.Min.X, py-r.Min.Y)
				yy, u, v := color.RGBToYCbCr(cr, cg, cb)
				y.Y[y.YOffset(px, py)], y.Cb[y.COffset(px, py)], y.Cr[y.COffset(px, py)] = yy, u, v
				a.Y[a.YOffset(px, py)], a.Cb[a.COffset(px, py)], a.Cr[a.COffset(px, py)] = yy, u, v
				a.A[a.AOffset(px, py)] = uint8(100 + 20*px)
			}
		}
		build["ycbcr"+ratio.String()], build["nycbcra"+ratio.String()] = y, a
	}
	for name, img := range build {
		for _, s := range []ImageSpec{
			{Width: w, Height: h, Scale: 1},
			{Width: 3, Height: 4, Scale: 1, Resize: ResizeLetterbox, Color: ColorBGR},
			{Width: 11, Height: 9, Scale: 1, Resize: ResizeCrop, Layout: LayoutNHWC},
		} {
			got := fill(t, s, img)
			want := fill(t, s, atOnly{img})
			for i := range got {
				// The YCbCr fast path converts with 8-bit arithmetic, At
				// with 16-bit: allow one step.
				if d := math.Abs(float64(got[i] - want[i])); d > 1 {
					t.Fatalf("%s %+v: value %d is %v, At path gives %v", name, s, i, got[i], want[i])
				}
			}
		}
	}
}

func TestFillErrors(t *testing.T) {
	s := ImageSpec{Width: 2, Height: 2}
	if err := s.Fill(make([]float32, 11), rgb2x2()); err == nil || CodeOf(err) != "" {
		t.Errorf("short dst: err %v, want an error without a code", err)
	}
	if err := s.Fill(make([]float32, 12), image.NewGray(image.Rect(0, 0, 0, 3))); CodeOf(err) != CodeInvalidImage {
		t.Errorf("empty image: err %v, want %s", err, CodeInvalidImage)
	}
	if err := s.Fill(make([]float32, 12), nil); CodeOf(err) != CodeInvalidImage {
		t.Errorf("nil image: err %v, want %s", err, CodeInvalidImage)
	}
	if err := (ImageSpec{}).Fill(make([]float32, 12), rgb2x2()); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("zero spec: err %v, want ErrInvalidSpec", err)
	}
}

func TestImageSpecValidate(t *testing.T) {
	ok := []ImageSpec{
		{Width: 1, Height: 1},
		{Width: 224, Height: 224, Resize: ResizeCrop, Color: ColorBGR, Layout: LayoutNHWC, Mean: []float32{1, 2, 3}, Std: []float32{1, 2, 3}},
		{Width: 28, Height: 28, Color: ColorGray, Mean: []float32{0.1307}, Std: []float32{0.3081}, Invert: InvertAuto, Resize: ResizeLetterbox},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	nan := float32(math.NaN())
	bad := []ImageSpec{
		{Width: 0, Height: 1},
		{Width: 1, Height: -1},
		{Width: MaxSpecSide + 1, Height: 1},
		{Width: MaxSpecSide, Height: MaxSpecSide},
		{Width: 1, Height: 1, Resize: "fit"},
		{Width: 1, Height: 1, Color: "rgba"},
		{Width: 1, Height: 1, Layout: "chw"},
		{Width: 1, Height: 1, Invert: "always"},
		{Width: 1, Height: 1, Scale: nan},
		{Width: 1, Height: 1, PadValue: float32(math.Inf(1))},
		{Width: 1, Height: 1, Mean: []float32{1, 2}},
		{Width: 1, Height: 1, Color: ColorGray, Mean: []float32{1, 2, 3}},
		{Width: 1, Height: 1, Std: []float32{0}},
		{Width: 1, Height: 1, Std: []float32{1, nan, 1}},
	}
	for _, s := range bad {
		if err := s.Validate(); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%+v: err %v, want ErrInvalidSpec", s, err)
		}
	}
	s := ImageSpec{Width: 4, Height: 3}
	if s.Channels() != 3 || s.Len() != 36 || len(s.Shape()) != 3 || s.Shape()[0] != 3 {
		t.Errorf("rgb: channels %d len %d shape %v", s.Channels(), s.Len(), s.Shape())
	}
	s = ImageSpec{Width: 4, Height: 3, Color: ColorGray, Layout: LayoutNHWC}
	if s.Channels() != 1 || s.Len() != 12 || s.Shape()[0] != 3 || s.Shape()[1] != 4 || s.Shape()[2] != 1 {
		t.Errorf("gray nhwc: channels %d len %d shape %v", s.Channels(), s.Len(), s.Shape())
	}
}

func TestResizeEmpty(t *testing.T) {
	for _, c := range []struct{ w, h int }{{0, 3}, {3, 0}, {-1, -1}} {
		if m := Resize(rgb2x2(), c.w, c.h); !m.Bounds().Empty() {
			t.Errorf("Resize to %dx%d: %v", c.w, c.h, m.Bounds())
		}
	}
	if m := Resize(nil, 2, 2); !m.Bounds().Empty() {
		t.Errorf("Resize(nil): %v", m.Bounds())
	}
}

// TestResampleExtremeAspect resizes a one-pixel-wide strip both ways; the
// streaming resampler keeps only a few rows whatever the shape.
func TestResampleExtremeAspect(t *testing.T) {
	strip := image.NewGray(image.Rect(0, 0, 1, 60000))
	for i := range strip.Pix {
		strip.Pix[i] = 77
	}
	s := ImageSpec{Width: 16, Height: 16, Color: ColorGray, Scale: 1}
	for _, mode := range []string{ResizeStretch, ResizeLetterbox, ResizeCrop} {
		s.Resize = mode
		for i, v := range fill(t, s, strip) {
			if v != 77 && !(mode == ResizeLetterbox && v == 0) {
				t.Fatalf("%s: value %d is %v", mode, i, v)
			}
		}
	}
	wide := image.NewGray(image.Rect(0, 0, 60000, 1))
	for i := range wide.Pix {
		wide.Pix[i] = 77
	}
	s.Resize = ResizeCrop
	for i, v := range fill(t, s, wide) {
		if v != 77 {
			t.Fatalf("wide crop: value %d is %v", i, v)
		}
	}
}
