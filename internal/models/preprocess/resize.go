package preprocess

import (
	"image"
	"image/color"
	"math"
)

// Resize resamples img to w x h with a bilinear (triangle) filter whose
// support widens when shrinking, as Pillow's BILINEAR does, so that a
// large photo shrunk to a model's input is antialiased rather than
// point-sampled. Transparent pixels are composited onto white; the result
// is opaque. Resize returns an empty image when w or h is not positive;
// it does not cap w*h, which callers take from a model, not from a user.
func Resize(img image.Image, w, h int) *image.NRGBA {
	if w <= 0 || h <= 0 || img == nil || img.Bounds().Empty() {
		return image.NewNRGBA(image.Rectangle{})
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	b := img.Bounds()
	resample(dst, newRowReader(img), 0, 0, float64(b.Dx()), float64(b.Dy()))
	return dst
}

// rowReader reads rows of an image as R,G,B float32 triples in 0..255,
// composited onto white. Coordinates are relative to the image's
// bounds. The common decoder outputs have their own loops; anything else
// goes through RGBA64At or At.
type rowReader struct {
	img image.Image
	b   image.Rectangle
	pal [][3]float32 // *image.Paletted only
}

func newRowReader(img image.Image) *rowReader {
	r := &rowReader{img: img, b: img.Bounds()}
	if m, ok := img.(*image.Paletted); ok {
		r.pal = make([][3]float32, 256)
		for i := range r.pal {
			c := color.Color(color.Black) // out-of-palette indices read as black, as image.Paletted.At does
			if i < len(m.Palette) {
				c = m.Palette[i]
			}
			cr, cg, cb, ca := c.RGBA()
			r.pal[i] = [3]float32{over16(cr, ca), over16(cg, ca), over16(cb, ca)}
		}
	}
	return r
}

// over16 composites a premultiplied 16-bit channel onto white, in 0..255.
func over16(c, a uint32) float32 { return float32(c+0xffff-a) / 257 }

// overN composites a non-premultiplied 8-bit channel onto white.
func overN(c, a uint8) float32 {
	if a == 0xff {
		return float32(c)
	}
	return float32(c)*float32(a)/255 + float32(255-a)
}

// read fills out with the pixels x0..x1-1 of row y, three floats each.
func (r *rowReader) read(y, x0, x1 int, out []float32) {
	out = out[:3*(x1-x0)]
	sy := r.b.Min.Y + y
	switch m := r.img.(type) {
	case *image.YCbCr:
		readYCbCr(m, r.b.Min.X+x0, r.b.Min.X+x1, sy, out)
	case *image.NYCbCrA:
		for x := x0; x < x1; x++ {
			sx := r.b.Min.X + x
			yi, ci := m.YOffset(sx, sy), m.COffset(sx, sy)
			a := m.A[m.AOffset(sx, sy)]
			cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			o := out[3*(x-x0):][:3]
			o[0], o[1], o[2] = overN(cr, a), overN(cg, a), overN(cb, a)
		}
	case *image.Gray:
		p := m.Pix[m.PixOffset(r.b.Min.X+x0, sy):]
		for x := x0; x < x1; x++ {
			v := float32(p[x-x0])
			o := out[3*(x-x0):][:3]
			o[0], o[1], o[2] = v, v, v
		}
	case *image.RGBA:
		p := m.Pix[m.PixOffset(r.b.Min.X+x0, sy):]
		for x := x0; x < x1; x++ {
			s := p[4*(x-x0):][:4]
			t := float32(255 - s[3])
			o := out[3*(x-x0):][:3]
			o[0], o[1], o[2] = min(float32(s[0])+t, 255), min(float32(s[1])+t, 255), min(float32(s[2])+t, 255)
		}
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(r.b.Min.X+x0, sy):]
		for x := x0; x < x1; x++ {
			s := p[4*(x-x0):][:4]
			o := out[3*(x-x0):][:3]
			o[0], o[1], o[2] = overN(s[0], s[3]), overN(s[1], s[3]), overN(s[2], s[3])
		}
	case *image.Paletted:
		p := m.Pix[m.PixOffset(r.b.Min.X+x0, sy):]
		for x := x0; x < x1; x++ {
			copy(out[3*(x-x0):][:3], r.pal[p[x-x0]][:])
		}
	case image.RGBA64Image: // 16-bit PNG and TIFF, CMYK, ...
		for x := x0; x < x1; x++ {
			c := m.RGBA64At(r.b.Min.X+x, sy)
			a := uint32(c.A)
			o := out[3*(x-x0):][:3]
			o[0], o[1], o[2] = over16(uint32(c.R), a), over16(uint32(c.G), a), over16(uint32(c.B), a)
		}
	default:
		for x := x0; x < x1; x++ {
			cr, cg, cb, ca := r.img.At(r.b.Min.X+x, sy).RGBA()
			o := out[3*(x-x0):][:3]
			o[0], o[1], o[2] = over16(cr, ca), over16(cg, ca), over16(cb, ca)
		}
	}
}

// taps holds the filter weights along one axis: output i reads source
// samples lo[i] .. lo[i]+len(w[off[i]:off[i+1]])-1.
type taps struct {
	lo  []int
	off []int
	w   []float32
	min int // first source sample any output reads
	max int // one past the last
}

// newTaps computes the weights that map the source interval [s0, s0+sn)
// (in pixels, fractional allowed) onto n outputs. Samples outside
// [0, limit) are left out and the rest renormalised, so edges do not
// darken; samples outside the interval but inside the image are used,
// which makes a centre crop equal to a crop of the whole resized image.
func newTaps(n int, s0, sn float64, limit int) taps {
	scale := sn / float64(n)
	support := max(scale, 1)
	t := taps{lo: make([]int, n), off: make([]int, n+1), min: limit, max: 0}
	t.w = make([]float32, 0, n*(int(2*support)+2))
	for i := 0; i < n; i++ {
		center := s0 + (float64(i)+0.5)*scale - 0.5
		a := max(int(math.Floor(center-support)), 0)
		b := min(int(math.Ceil(center+support)), limit-1)
		start := len(t.w)
		first, total := -1, 0.0
		for j := a; j <= b; j++ {
			wt := 1 - math.Abs(float64(j)-center)/support
			if wt <= 0 {
				if first >= 0 {
					break
				}
				continue
			}
			if first < 0 {
				first = j
			}
			total += wt
			t.w = append(t.w, float32(wt))
		}
		if first < 0 { // cannot happen for a centre inside the image; be safe
			first = min(max(int(math.Round(center)), 0), limit-1)
			t.w, total = append(t.w, 1), 1
		}
		for k := start; k < len(t.w); k++ {
			t.w[k] = float32(float64(t.w[k]) / total)
		}
		t.lo[i], t.off[i+1] = first, len(t.w)
		t.min = min(t.min, first)
		t.max = max(t.max, first+len(t.w)-start)
	}
	return t
}

func (t *taps) weights(i int) []float32 { return t.w[t.off[i]:t.off[i+1]] }

// resample fills dst (bounds at the origin) from the source rectangle
// (x0, y0, w, h) of r's image, in fractional pixels relative to its
// bounds. It streams: each source row is converted once, and only a few
// rows of floats are kept, whatever the sizes. When shrinking vertically
// each source row is added into the few output rows that use it
// (vertical pass first); when enlarging, each output row combines the
// one or two horizontally resampled source rows it needs (horizontal
// pass first).
func resample(dst *image.NRGBA, r *rowReader, x0, y0, w, h float64) {
	dw, dh := dst.Rect.Dx(), dst.Rect.Dy()
	tx := newTaps(dw, x0, w, r.b.Dx())
	ty := newTaps(dh, y0, h, r.b.Dy())
	cols := tx.max - tx.min
	src := make([]float32, 3*cols)
	out := make([]float32, 3*dw)
	writeRow := func(dy int, acc []float32) {
		hresample(out, acc, &tx)
		putRow(dst, dy, out)
	}

	if dh < ty.max-ty.min {
		// Shrinking: add each source row into the output rows whose
		// windows hold it. Windows move forward monotonically, so the
		// open rows are a short run [first, next).
		var free [][]float32
		open := map[int][]float32{}
		first, next := 0, 0
		for y := ty.min; y < ty.max; y++ {
			for next < dh && ty.lo[next] <= y {
				var acc []float32
				if n := len(free); n > 0 {
					acc, free = free[n-1], free[:n-1]
					clear(acc)
				} else {
					acc = make([]float32, 3*cols)
				}
				open[next] = acc
				next++
			}
			r.read(y, tx.min, tx.max, src)
			for dy := first; dy < next; dy++ {
				ws := ty.weights(dy)
				k := y - ty.lo[dy]
				if k < 0 || k >= len(ws) {
					continue
				}
				wt, acc := ws[k], open[dy][:len(src)]
				for i, v := range src {
					acc[i] += wt * v
				}
			}
			for first < next && ty.lo[first]+len(ty.weights(first)) <= y+1 {
				writeRow(first, open[first])
				free = append(free, open[first])
				delete(open, first)
				first++
			}
		}
		return
	}

	// Enlarging (or same height): a ring of horizontally resampled source
	// rows, as many as one output row can use.
	span := 0
	for dy := 0; dy < dh; dy++ {
		span = max(span, len(ty.weights(dy)))
	}
	ring := make([][]float32, span)
	ringY := make([]int, span)
	for i := range ring {
		ring[i], ringY[i] = make([]float32, 3*dw), -1
	}
	acc := make([]float32, 3*dw)
	for dy := 0; dy < dh; dy++ {
		clear(acc)
		for k, wt := range ty.weights(dy) {
			y := ty.lo[dy] + k
			s := y % span
			if ringY[s] != y {
				r.read(y, tx.min, tx.max, src)
				hresample(ring[s], src, &tx)
				ringY[s] = y
			}
			acc := acc[:len(ring[s])]
			for i, v := range ring[s] {
				acc[i] += wt * v
			}
		}
		putRow(dst, dy, acc)
	}
}

// putRow stores one row of R,G,B floats into dst as opaque pixels.
func putRow(dst *image.NRGBA, dy int, row []float32) {
	p := dst.Pix[dy*dst.Stride:][:4*dst.Rect.Dx()]
	for x := range dst.Rect.Dx() {
		o := row[3*x:][:3]
		q := p[4*x:][:4]
		q[0], q[1], q[2], q[3] = toByte(o[0]), toByte(o[1]), toByte(o[2]), 0xff
	}
}

// hresample resamples one row horizontally; src starts at sample t.min.
func hresample(out, src []float32, t *taps) {
	for x := range len(out) / 3 {
		var r, g, b float32
		s := src[3*(t.lo[x]-t.min):]
		for k, wt := range t.weights(x) {
			p := s[3*k:][:3]
			r += wt * p[0]
			g += wt * p[1]
			b += wt * p[2]
		}
		o := out[3*x:][:3]
		o[0], o[1], o[2] = r, g, b
	}
}

func toByte(v float32) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// readYCbCr converts pixels x0..x1-1 (absolute) of row y. It is
// YOffset, COffset and color.YCbCrToRGB with the per-row work hoisted
// and the conversion inlined: this loop is most of the cost of
// preprocessing a photo.
func readYCbCr(m *image.YCbCr, x0, x1, y int, out []float32) {
	div := 1 // horizontal chroma subsampling
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		div = 2
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		div = 4
	}
	yrow := m.Y[m.YOffset(m.Rect.Min.X, y):]
	crow := m.COffset(m.Rect.Min.X, y) - m.Rect.Min.X/div
	cbs, crs := m.Cb[crow+x0/div:], m.Cr[crow+x0/div:]
	for x := x0; x < x1; x++ {
		ci := x/div - x0/div
		// color.YCbCrToRGB, verbatim in effect.
		yy := int32(yrow[x-m.Rect.Min.X]) * 0x10101
		cb := int32(cbs[ci]) - 128
		cr := int32(crs[ci]) - 128
		r := yy + 91881*cr
		if uint32(r)&0xff000000 == 0 {
			r >>= 16
		} else {
			r = ^(r >> 31)
		}
		g := yy - 22554*cb - 46802*cr
		if uint32(g)&0xff000000 == 0 {
			g >>= 16
		} else {
			g = ^(g >> 31)
		}
		b := yy + 116130*cb
		if uint32(b)&0xff000000 == 0 {
			b >>= 16
		} else {
			b = ^(b >> 31)
		}
		o := out[3*(x-x0):][:3]
		o[0], o[1], o[2] = float32(uint8(r)), float32(uint8(g)), float32(uint8(b))
	}
}
