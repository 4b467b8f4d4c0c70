package ocr

import (
	"fmt"
	"math"
	"sort"

	"github.com/inferq/inferq/internal/ort"
)

const (
	// recHeight is the recognizer's input height (PP-OCRv4: 3x48xW).
	recHeight = 48
	// recMinWidth is the narrowest run: a square, six CTC steps. PaddleOCR
	// pads every run out to 320 px (its rec_image_shape 3,48,320), which
	// makes a short line (a table cell, a heading, a total) cost as much
	// as a line of 320: on pages of one- and two-word lines (a probe of 75
	// pages, five kinds of damage, 4,050 characters) runs cut to the
	// lines' own width read them 1.41 times as fast, with 33 characters
	// wrong against 37; on pages of long lines, and in every CER test of
	// this package, the readings came out the same.
	recMinWidth = recHeight
	// recMaxRatio bounds a line's width at 100 heights: a wider line is
	// squeezed rather than let one run's tensor grow without limit. It
	// was 25, and a full line of an A4 page at 150 dpi is 30 to 45
	// heights: squeezed, its letters got too few CTC steps (double letters
	// merged, thin ones dropped), and pages of 17 and 21 px type saved as
	// JPEG at quality 40 read with 7.1% of their characters wrong, against
	// 1.0 and 0.49% at their own width (PaddleOCR never squeezes a line).
	recMaxRatio = 100
	// recPad is the blank the recognizer gets right of every line, beyond
	// the line's own margin: it was trained on lines padded out to 320
	// px, and one line per run without it lost a line's final full stop
	// more often on the ocr-peer bench's pages (5 pages of 72 against 3).
	recPad = 16
	// cropMaxHeight bounds the text height of the intermediate crop, so a
	// page-sized region on a huge page does not warp at full size only to
	// be shrunk to 48 px.
	cropMaxHeight = 4 * recHeight
)

// crop is a text line cut out of the page and turned upright, as
// interleaved float32 RGB.
type crop struct {
	w, h int
	pix  []float32
}

// cutLine warps the quad to an axis-aligned rectangle (PaddleOCR's
// get_rotate_crop_image, bilinear where it uses bicubic) and turns a crop
// at least 1.5 times taller than wide by 90° counterclockwise, as
// PaddleOCR does for vertical lines. ok is false for a degenerate quad.
func cutLine(src *rgbImage, q Quad) (crop, bool) {
	pts := q.points()
	cw, ch := q.size()
	rotate := ch >= 1.5*cw
	textH := ch
	if rotate {
		textH = cw
	}
	s := 1.0
	if textH > cropMaxHeight {
		s = cropMaxHeight / textH
	}
	if long := math.Max(cw, ch) * s; long > recMaxRatio*cropMaxHeight {
		s *= recMaxRatio * cropMaxHeight / long
	}
	if cw < 1 || ch < 1 {
		return crop{}, false
	}
	w, h := max(int(cw*s), 1), max(int(ch*s), 1)
	fw, fh := float64(w), float64(h)
	hm, ok := homography([4]point{{0, 0}, {fw, 0}, {fw, fh}, {0, fh}}, pts)
	if !ok {
		return crop{}, false
	}
	out := crop{w: w, h: h, pix: make([]float32, w*h*3)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x), float64(y)
			d := hm[6]*fx + hm[7]*fy + hm[8]
			if d == 0 {
				continue
			}
			sx := (hm[0]*fx + hm[1]*fy + hm[2]) / d
			sy := (hm[3]*fx + hm[4]*fy + hm[5]) / d
			src.sample(sx, sy, out.pix[(y*w+x)*3:])
		}
	}
	if rotate {
		out = out.rot90()
	}
	return out, true
}

// sample reads the page at (x, y) bilinearly, replicating the border.
func (m *rgbImage) sample(x, y float64, dst []float32) {
	if math.IsNaN(x) || math.IsNaN(y) {
		return
	}
	x = math.Min(math.Max(x, 0), float64(m.w-1))
	y = math.Min(math.Max(y, 0), float64(m.h-1))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, m.w-1), min(y0+1, m.h-1)
	ax, ay := float32(x-float64(x0)), float32(y-float64(y0))
	p00 := m.pix[(y0*m.w+x0)*3:]
	p01 := m.pix[(y0*m.w+x1)*3:]
	p10 := m.pix[(y1*m.w+x0)*3:]
	p11 := m.pix[(y1*m.w+x1)*3:]
	for c := 0; c < 3; c++ {
		top := float32(p00[c])*(1-ax) + float32(p01[c])*ax
		bot := float32(p10[c])*(1-ax) + float32(p11[c])*ax
		dst[c] = top*(1-ay) + bot*ay
	}
}

// rot90 turns the crop 90° counterclockwise (numpy's rot90).
func (c crop) rot90() crop {
	out := crop{w: c.h, h: c.w, pix: make([]float32, len(c.pix))}
	for i := 0; i < out.h; i++ {
		for j := 0; j < out.w; j++ {
			copy(out.pix[(i*out.w+j)*3:(i*out.w+j)*3+3], c.pix[(j*c.w+c.w-1-i)*3:])
		}
	}
	return out
}

func (c crop) ratio() float64 { return float64(c.w) / float64(c.h) }

// decodeFunc turns one line's T x C recognizer output, and the line's ink,
// into its text and score.
type decodeFunc func(probs []float32, T, C int, ink lineInk) (string, float32)

// recognizeLines reads each quad's text. Lines go to the recognizer in
// runs of similar width-to-height ratio (sorted as PaddleOCR does), at
// most batch lines a run and, spread being positive, none more than
// spread times as wide as the run's narrowest: the narrower lines of a
// run are padded out to its widest, and on a CPU padding is all that
// batching lines of different widths buys (ONNX Runtime runs a batch of
// six equal lines no faster per line than six single ones, so a run of
// mixed widths is slower by its padding: 13% of the recognizer's time on
// pages of the ocr-peer bench's kinds). Results come back in the quads'
// order.
func recognizeLines(src *rgbImage, quads []Quad, rec Runner, decode decodeFunc, batch int, spread float64) ([]string, []float32, error) {
	texts := make([]string, len(quads))
	scores := make([]float32, len(quads))
	crops := make([]crop, 0, len(quads))
	idx := make([]int, 0, len(quads))
	for i, q := range quads {
		if c, ok := cutLine(src, q); ok {
			crops = append(crops, c)
			idx = append(idx, i)
		}
	}
	order := make([]int, len(crops))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return crops[order[a]].ratio() < crops[order[b]].ratio() })
	for start, end := 0, 0; start < len(order); start = end {
		end = start + 1
		for end < len(order) && end-start < batch && (spread <= 0 || crops[order[end]].ratio() <= spread*crops[order[start]].ratio()) {
			end++
		}
		part := order[start:end]
		lines := make([]crop, len(part))
		for k, o := range part {
			lines[k] = crops[o]
		}
		in, n, width, inks := recInput(lines)
		outs, err := rec.Run([]ort.Tensor{{
			Shape:   []int64{int64(n), 3, recHeight, int64(width)},
			DType:   ort.Float32,
			Float32: in,
		}})
		if err != nil {
			return nil, nil, fmt.Errorf("ocr recognition: %w", err)
		}
		if len(outs) == 0 || outs[0].DType != ort.Float32 || len(outs[0].Shape) != 3 || outs[0].Shape[0] != int64(n) {
			return nil, nil, fmt.Errorf("ocr recognition: want a float32 [%d,T,C] output", n)
		}
		T, C := outs[0].Shape[1], outs[0].Shape[2]
		if T < 0 || C <= 0 || T > 1<<20 || C > 1<<20 || int64(len(outs[0].Float32)) < int64(n)*T*C {
			return nil, nil, fmt.Errorf("ocr recognition: output shape %v does not match its data", outs[0].Shape)
		}
		for k, o := range part {
			step := int(T * C)
			t, s := decode(outs[0].Float32[k*step:(k+1)*step], int(T), int(C), inks[k])
			texts[idx[o]], scores[idx[o]] = t, s
		}
	}
	return texts, scores, nil
}

// recInput builds one recognition batch from upright line crops: each is
// resized to height 48 keeping its ratio, channels B,G,R, values
// (v/255-0.5)/0.5, and zero-padded on the right to the batch's width
// (48 times the widest ratio, at most 48*100, plus recPad; at least
// recMinWidth). inks are the lines' ink as the recognizer sees it (inkOf,
// across the batch's width), for decoding (caseByHeight).
func recInput(lines []crop) (tensor []float32, n, width int, inks []lineInk) {
	maxRatio := 0.0
	for _, c := range lines {
		maxRatio = math.Max(maxRatio, c.ratio())
	}
	maxRatio = math.Min(maxRatio, recMaxRatio)
	width = max(int(recHeight*maxRatio)+recPad, recMinWidth)
	n = len(lines)
	plane := recHeight * width
	out := make([]float32, n*3*plane)
	inks = make([]lineInk, n)
	for k, c := range lines {
		rw := int(math.Ceil(recHeight * c.ratio()))
		rw = min(max(rw, 1), width)
		px := resample(c.pix, c.w, c.h, rw, recHeight)
		stretchContrast(px)
		lum := make([]float32, rw*recHeight)
		for i := range lum {
			lum[i] = (px[i*3] + px[i*3+1] + px[i*3+2]) / 3
		}
		inks[k] = inkOf(lum, rw, recHeight)
		inks[k].w = width // the run's width: what the recognizer's steps span
		base := out[k*3*plane:]
		for ch := 0; ch < 3; ch++ {
			sc := 2 - ch // B, G, R: the order the recognizer was trained on
			o := base[ch*plane : (ch+1)*plane]
			for y := 0; y < recHeight; y++ {
				for x := 0; x < rw; x++ {
					o[y*width+x] = px[(y*rw+x)*3+sc]/127.5 - 1
				}
			}
		}
	}
	return out, n, width, inks
}

// stretchContrast spreads a faint line over the whole range: when the
// line's paper and ink (its 1st and 99th luminance percentiles) are less
// than faintRange apart, the two are stretched to 0 and 255. The
// recognizer was trained on printed, well-inked lines; ink at 110 on
// paper at 190 (the noisy sets' low contrast) read thin letters as gaps
// ("Co lour", "Wi lde"). Lines of ordinary contrast are left alone: on the
// noisy sets (TestRecognizeNoisyPagesCER), stretching below 120 took low
// contrast from 2.83 % to 2.30 % CER and left every other set as it was,
// while stretching every line (or below 160) took blur from 0.53 % to
// 0.71 %.
func stretchContrast(px []float32) {
	var hist [256]int
	n := len(px) / 3
	for i := 0; i < n; i++ {
		l := (px[i*3] + px[i*3+1] + px[i*3+2]) / 3
		hist[min(max(int(l), 0), 255)]++
	}
	lo, hi := 0, 255
	for acc := 0; lo < 255; lo++ {
		if acc += hist[lo]; acc > n/100 {
			break
		}
	}
	for acc := 0; hi > 0; hi-- {
		if acc += hist[hi]; acc > n/100 {
			break
		}
	}
	if hi-lo >= faintRange || hi <= lo {
		return
	}
	scale := 255 / float32(hi-lo)
	for i := range px {
		px[i] = min(max((px[i]-float32(lo))*scale, 0), 255)
	}
}

// faintRange is the paper-to-ink distance below which a line is faint.
const faintRange = 120
