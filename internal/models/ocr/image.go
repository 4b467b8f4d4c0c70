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
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	w, h := b.Dx(), b.Dy()
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

// resample resizes an interleaved 3-channel image (sw x sh) to dw x dh with
// a triangle filter widened by the reduction factor: plain bilinear when
// enlarging, area-like averaging when shrinking, so that strokes thinner
// than the step do not vanish the way they do under cv2's INTER_LINEAR.
// The result is interleaved float32 in the source's value range.
func resample[T uint8 | float32](src []T, sw, sh, dw, dh int) []float32 {
	xs, xw := filterWeights(sw, dw)
	ys, yw := filterWeights(sh, dh)
	tmp := make([]float32, sh*dw*3)
	for y := 0; y < sh; y++ {
		srow := src[y*sw*3 : (y+1)*sw*3]
		trow := tmp[y*dw*3 : (y+1)*dw*3]
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
	}
	dst := make([]float32, dh*dw*3)
	for y := 0; y < dh; y++ {
		drow := dst[y*dw*3 : (y+1)*dw*3]
		for k, wt := range yw[y] {
			trow := tmp[(ys[y]+k)*dw*3 : (ys[y]+k+1)*dw*3]
			for i, v := range trow {
				drow[i] += wt * v
			}
		}
	}
	return dst
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
