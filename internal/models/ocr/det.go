package ocr

import (
	"image"
	"math"
)

// detBGR says whether the detection input's channels run B,G,R (the order
// PaddleOCR's cv2-based reader hands its det model) rather than R,G,B.
// Measured on 423 rendered pages in random colours, R,G,B (the order the
// ImageNet mean and std are given in) found the right number of lines on
// more of them (32 misses against 42); on grey pages the two are the same.
const detBGR = false

// The normalization of PaddleOCR's det config (ImageNet mean and std,
// applied channel by channel in the order the channels are fed).
var (
	detMean = [3]float32{0.485, 0.456, 0.406}
	detStd  = [3]float32{0.229, 0.224, 0.225}
)

// DetSize is the detection input size for a w x h page: scaled so that the
// longer side is at most maxSide (never enlarged), then each side rounded
// to a multiple of 32, at least 32 (PaddleOCR's DetResizeForTest, limit
// type "max").
func DetSize(w, h, maxSide int) (dw, dh int) {
	if maxSide <= 0 {
		maxSide = DefaultParams().MaxSide
	}
	ratio := 1.0
	if m := max(w, h); m > maxSide {
		ratio = float64(maxSide) / float64(m)
	}
	round32 := func(v int) int {
		r := int(math.Round(float64(v)*ratio/32)) * 32
		return max(r, 32)
	}
	return round32(w), round32(h)
}

// DetInput turns a page into the detection model's input: one NCHW float32
// sample of h x w (DetSize), normalized as PaddleOCR's det config says. An
// image without pixels gives a nil tensor.
func DetInput(img image.Image, maxSide int) (tensor []float32, h, w int) {
	src, err := toRGB(img)
	if err != nil {
		return nil, 0, 0
	}
	return detInputRGB(src, maxSide)
}

func detInputRGB(src *rgbImage, maxSide int) ([]float32, int, int) {
	w, h := DetSize(src.w, src.h, maxSide)
	out := make([]float32, 3*h*w)
	plane := h * w
	var sc [3]int // the source channel (R,G,B) feeding input channel c
	var mean, inv [3]float32
	for c := range 3 {
		sc[c] = c
		if detBGR {
			sc[c] = 2 - c
		}
		mean[c], inv[c] = detMean[c]*255, 1/(detStd[c]*255)
	}
	resampleRows(src.pix, src.w, src.h, w, h, func(y int, px []float32) {
		for c := range 3 {
			o := out[c*plane+y*w : c*plane+(y+1)*w]
			for x := range o {
				o[x] = (px[x*3+sc[c]] - mean[c]) * inv[c]
			}
		}
	})
	return out, h, w
}

// Boxes is DB postprocessing (PaddleOCR's DBPostProcess, "fast" scoring):
// it finds the text regions in a detection probability map of h x w and
// returns them in the page's coordinates (origW x origH), in reading order.
func Boxes(prob []float32, h, w int, origW, origH int, p Params) []Quad {
	p = p.withDefaults()
	if h <= 0 || w <= 0 || len(prob) < h*w || origW <= 0 || origH <= 0 {
		return nil
	}
	prob = prob[:h*w]
	sx, sy := float64(origW)/float64(w), float64(origH)/float64(h)
	var quads []Quad
	for _, pts := range components(prob, h, w, p.Thresh) {
		r := minAreaRect(convexHull(pts))
		if r.minSide() < p.MinSize {
			continue
		}
		if boxScore(prob, h, w, r.corners()) < p.BoxThresh {
			continue
		}
		r = r.unclip(p.UnclipRatio)
		if r.minSide() < p.MinSize+2 {
			continue
		}
		var q Quad
		for i, c := range r.corners() {
			q[i] = [2]int{
				clampInt(int(math.Round(c.x*sx)), 0, origW-1),
				clampInt(int(math.Round(c.y*sy)), 0, origH-1),
			}
		}
		// PaddleOCR's filter_tag_det_res: drop what clipping flattened.
		if int(pointOf(q[0]).dist(pointOf(q[1]))) <= 3 || int(pointOf(q[0]).dist(pointOf(q[3]))) <= 3 {
			continue
		}
		quads = append(quads, q)
	}
	sortQuads(quads)
	return quads
}

func clampInt(v, lo, hi int) int {
	return min(max(v, lo), hi)
}

type run struct{ y, x0, x1, label int }

// components labels the 8-connected regions of prob > thresh (the regions
// cv2.findContours outlines) and returns, for each, the end points of its
// pixel runs: enough for the convex hull, which is all the boxes need.
func components(prob []float32, h, w int, thresh float32) [][]point {
	var runs []run
	parent := []int{}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	prevStart, prevEnd := 0, 0 // runs of the row above: runs[prevStart:prevEnd]
	for y := 0; y < h; y++ {
		row := prob[y*w : (y+1)*w]
		start := len(runs)
		for x := 0; x < w; {
			if !(row[x] > thresh) { // NaN counts as background, never as a run of none
				x++
				continue
			}
			x0 := x
			for x < w && row[x] > thresh {
				x++
			}
			label := len(parent)
			parent = append(parent, label)
			// 8-connectivity: runs above touching [x0-1, x] merge with this one.
			for i := prevStart; i < prevEnd; i++ {
				pr := runs[i]
				if pr.x1 < x0-1 {
					continue
				}
				if pr.x0 > x {
					break
				}
				a, b := find(pr.label), find(label)
				if a != b {
					parent[max(a, b)] = min(a, b)
				}
			}
			runs = append(runs, run{y: y, x0: x0, x1: x - 1, label: label})
		}
		prevStart, prevEnd = start, len(runs)
	}
	index := map[int]int{}
	var out [][]point
	for _, r := range runs {
		root := find(r.label)
		i, ok := index[root]
		if !ok {
			i = len(out)
			index[root] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], point{float64(r.x0), float64(r.y)}, point{float64(r.x1), float64(r.y)})
	}
	return out
}

// boxScore is the mean probability inside the box (PaddleOCR's
// box_score_fast: the box's polygon filled over its bounding rectangle).
func boxScore(prob []float32, h, w int, box [4]point) float32 {
	minX, maxX := math.Inf(1), math.Inf(-1)
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, c := range box {
		minX, maxX = math.Min(minX, c.x), math.Max(maxX, c.x)
		minY, maxY = math.Min(minY, c.y), math.Max(maxY, c.y)
	}
	x0 := clampInt(int(math.Floor(minX)), 0, w-1)
	x1 := clampInt(int(math.Ceil(maxX)), 0, w-1)
	y0 := clampInt(int(math.Floor(minY)), 0, h-1)
	y1 := clampInt(int(math.Ceil(maxY)), 0, h-1)
	// Inside a clockwise (y down) convex polygon every edge sees the point
	// on its right; half a pixel of slack counts the boundary pixels in,
	// as fillPoly does.
	var edges [4]struct {
		o, n point // origin, outward unit normal
	}
	for i := range box {
		a, b := box[i], box[(i+1)%4]
		d := b.sub(a)
		if d.norm() == 0 {
			edges[i].n = point{}
		} else {
			edges[i].n = point{d.y, -d.x}.unit()
		}
		edges[i].o = a
	}
	var sum float64
	var n int
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			p := point{float64(x), float64(y)}
			inside := true
			for _, e := range edges {
				if p.sub(e.o).dot(e.n) > 0.5 {
					inside = false
					break
				}
			}
			if inside {
				sum += float64(prob[y*w+x])
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float32(sum / float64(n))
}
