package ocr

import (
	"image"
	"image/draw"
	"math"
)

// rgbImage is a page as packed 8-bit RGB, flattened onto white. Both halves
// of the pipeline read it: detection resizes it, recognition warps crops
// out of it.
type rgbImage struct {
	w, h int
	pix  []uint8 // len w*h*3
}

// toRGB flattens img onto a white background: cv2.imread drops alpha
// outright, which turns dark text on a transparent page into black on
// black; white is what a reader of such a page sees.
func toRGB(img image.Image) (*rgbImage, error) {
	if img == nil {
		return nil, ErrEmptyImage
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, ErrEmptyImage
	}
	w, h := b.Dx(), b.Dy()
	if g, ok := img.(*image.Gray); ok {
		// A grey page (a scan, a rendered document page) is opaque: each
		// value thrice, without drawing it onto RGBA first.
		out := &rgbImage{w: w, h: h, pix: make([]uint8, w*h*3)}
		for y := 0; y < h; y++ {
			row := g.Pix[y*g.Stride:][:w] // Pix starts at Rect.Min, a sub-image's too
			o := out.pix[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				o[x*3], o[x*3+1], o[x*3+2] = v, v, v
			}
		}
		return out, nil
	}
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	out := &rgbImage{w: w, h: h, pix: make([]uint8, w*h*3)}
	for y := 0; y < h; y++ {
		row := rgba.Pix[y*rgba.Stride : y*rgba.Stride+w*4]
		o := out.pix[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			a := 255 - row[x*4+3] // premultiplied: over white adds 255-a
			o[x*3] = sat(int(row[x*4]) + int(a))
			o[x*3+1] = sat(int(row[x*4+1]) + int(a))
			o[x*3+2] = sat(int(row[x*4+2]) + int(a))
		}
	}
	return out, nil
}

func sat(v int) uint8 {
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resample resizes an interleaved 3-channel image (sw x sh) to dw x dh
// (resampleRows) and returns it whole: interleaved float32 in the source's
// value range.
func resample[T uint8 | float32](src []T, sw, sh, dw, dh int) []float32 {
	dst := make([]float32, dh*dw*3)
	resampleRows(src, sw, sh, dw, dh, func(y int, px []float32) { copy(dst[y*dw*3:], px) })
	return dst
}

// resampleRows resizes an interleaved 3-channel image (sw x sh) to dw x dh
// with a triangle filter widened by the reduction factor: plain bilinear
// when enlarging, area-like averaging when shrinking, so that strokes
// thinner than the step do not vanish the way they do under cv2's
// INTER_LINEAR. It hands each destination row, interleaved float32 in the
// source's value range, to row, top to bottom; the slice is reused for the
// next row. It holds only the source rows, resized across, that one
// destination row reads, not the whole image resized across: a page
// detected at its own size (an A4 page at 150 dpi) made two 26 MB
// intermediates per pass, fresh memory the page faulted in while ONNX
// Runtime's own buffers pushed it out of the cache.
func resampleRows[T uint8 | float32](src []T, sw, sh, dw, dh int, row func(y int, px []float32)) {
	xs, xw := filterWeights(sw, dw)
	ys, yw := filterWeights(sh, dh)
	// Destination rows read source rows in windows that only move down,
	// so a ring as deep as the widest window holds every row one reads.
	taps := 1
	for _, w := range yw {
		taps = max(taps, len(w))
	}
	ring := make([]float32, taps*dw*3)
	held := make([]int, taps) // the source row in each slot; -1: none
	for i := range held {
		held[i] = -1
	}
	across := func(sy int) []float32 {
		slot := sy % taps
		trow := ring[slot*dw*3 : (slot+1)*dw*3]
		if held[slot] == sy {
			return trow
		}
		srow := src[sy*sw*3 : (sy+1)*sw*3]
		for x := 0; x < dw; x++ {
			var r, g, b float32
			s := xs[x] * 3
			for k, wt := range xw[x] {
				i := s + k*3
				r += wt * float32(srow[i])
				g += wt * float32(srow[i+1])
				b += wt * float32(srow[i+2])
			}
			trow[x*3], trow[x*3+1], trow[x*3+2] = r, g, b
		}
		held[slot] = sy
		return trow
	}
	drow := make([]float32, dw*3)
	for y := 0; y < dh; y++ {
		clear(drow)
		for k, wt := range yw[y] {
			for i, v := range across(ys[y] + k) {
				drow[i] += wt * v
			}
		}
		row(y, drow)
	}
}

// filterWeights gives, for each destination index, the first source index
// and the normalized weights of the source samples from there on.
func filterWeights(src, dst int) ([]int, [][]float32) {
	scale := float64(src) / float64(dst)
	support := math.Max(scale, 1)
	starts := make([]int, dst)
	weights := make([][]float32, dst)
	for i := 0; i < dst; i++ {
		center := (float64(i) + 0.5) * scale
		lo := int(math.Floor(center - support))
		hi := int(math.Ceil(center + support))
		lo = max(lo, 0)
		hi = min(hi, src)
		ws := make([]float64, 0, hi-lo)
		var sum float64
		for j := lo; j < hi; j++ {
			wt := 1 - math.Abs(float64(j)+0.5-center)/support
			if wt < 0 {
				wt = 0
			}
			ws = append(ws, wt)
			sum += wt
		}
		if sum == 0 { // cannot happen for src >= 1, but never divide by zero
			j := min(max(int(center), 0), src-1)
			lo, ws, sum = j, []float64{1}, 1
		}
		f := make([]float32, len(ws))
		for k, wt := range ws {
			f[k] = float32(wt / sum)
		}
		starts[i], weights[i] = lo, f
	}
	return starts, weights
}
