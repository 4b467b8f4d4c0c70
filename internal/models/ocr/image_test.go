package ocr

import (
	"image"
	"image/draw"
	"math/rand/v2"
	"slices"
	"testing"
)

// twoPass is the resampler as first written: the whole image resized
// across, then down, each pass into a buffer of its own. resampleRows must
// give the same values to the bit: the detector and recognizer were tuned
// on them.
func twoPass(src []uint8, sw, sh, dw, dh int) []float32 {
	xs, xw := filterWeights(sw, dw)
	ys, yw := filterWeights(sh, dh)
	tmp := make([]float32, sh*dw*3)
	for y := 0; y < sh; y++ {
		for x := 0; x < dw; x++ {
			var r, g, b float32
			for k, wt := range xw[x] {
				i := y*sw*3 + (xs[x]+k)*3
				r += wt * float32(src[i])
				g += wt * float32(src[i+1])
				b += wt * float32(src[i+2])
			}
			tmp[(y*dw+x)*3], tmp[(y*dw+x)*3+1], tmp[(y*dw+x)*3+2] = r, g, b
		}
	}
	dst := make([]float32, dh*dw*3)
	for y := 0; y < dh; y++ {
		for k, wt := range yw[y] {
			for i := 0; i < dw*3; i++ {
				dst[y*dw*3+i] += wt * tmp[(ys[y]+k)*dw*3+i]
			}
		}
	}
	return dst
}

func TestResampleRowsMatchesTwoPasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ sw, sh, dw, dh int }{
		{1240, 1754, 672, 960},   // an A4 page to the detector's 960
		{1240, 1754, 1248, 1760}, // the same detected again at its own size
		{37, 23, 96, 48},         // a line crop enlarged to the recognizer's 48
		{300, 17, 41, 48},        // shrunk across, enlarged down
		{5, 400, 32, 32},         // a tall strip
		{1, 1, 32, 32},
	} {
		src := make([]uint8, c.sw*c.sh*3)
		for i := range src {
			src[i] = uint8(rng.IntN(256))
		}
		want := twoPass(src, c.sw, c.sh, c.dw, c.dh)
		if got := resample(src, c.sw, c.sh, c.dw, c.dh); !slices.Equal(got, want) {
			t.Errorf("%dx%d to %dx%d: resample differs from the two passes", c.sw, c.sh, c.dw, c.dh)
		}
		rows := 0
		resampleRows(src, c.sw, c.sh, c.dw, c.dh, func(y int, px []float32) {
			if y != rows || !slices.Equal(px, want[y*c.dw*3:(y+1)*c.dw*3]) {
				t.Errorf("%dx%d to %dx%d: row %d (the %dth handed) differs", c.sw, c.sh, c.dw, c.dh, y, rows)
			}
			rows++
		})
		if rows != c.dh {
			t.Errorf("%dx%d to %dx%d: %d rows handed, want %d", c.sw, c.sh, c.dw, c.dh, rows, c.dh)
		}
	}
}

// A grey page takes a path of its own into RGB; it must read as the same
// page drawn onto RGBA, a sub-image too.
func TestToRGBGrey(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	g := image.NewGray(image.Rect(0, 0, 61, 47))
	for i := range g.Pix {
		g.Pix[i] = uint8(rng.IntN(256))
	}
	for _, img := range []*image.Gray{g, g.SubImage(image.Rect(7, 5, 40, 30)).(*image.Gray)} {
		rgba := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
		draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
		got, err := toRGB(img)
		if err != nil {
			t.Fatal(err)
		}
		want, err := toRGB(rgba)
		if err != nil {
			t.Fatal(err)
		}
		if got.w != want.w || got.h != want.h || !slices.Equal(got.pix, want.pix) {
			t.Errorf("grey %v: differs from the same page as RGBA", img.Bounds())
		}
	}
}
