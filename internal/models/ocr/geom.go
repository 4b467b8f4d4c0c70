package ocr

import (
	"math"
	"sort"
)

// point is a position in pixels, x right and y down.
type point struct{ x, y float64 }

func (a point) sub(b point) point     { return point{a.x - b.x, a.y - b.y} }
func (a point) add(b point) point     { return point{a.x + b.x, a.y + b.y} }
func (a point) scale(s float64) point { return point{a.x * s, a.y * s} }
func (a point) dot(b point) float64   { return a.x*b.x + a.y*b.y }
func (a point) cross(b point) float64 { return a.x*b.y - a.y*b.x }
func (a point) dist(b point) float64  { return math.Hypot(a.x-b.x, a.y-b.y) }
func cross3(o, a, b point) float64    { return a.sub(o).cross(b.sub(o)) }
func (a point) less(b point) bool     { return a.x < b.x || (a.x == b.x && a.y < b.y) }
func (a point) equal(b point) bool    { return a.x == b.x && a.y == b.y }
func (a point) norm() float64         { return math.Hypot(a.x, a.y) }
func (a point) perp() point           { return point{-a.y, a.x} }
func (a point) unit() point           { return a.scale(1 / a.norm()) }
func pointOf(p [2]int) point          { return point{float64(p[0]), float64(p[1])} }

// convexHull is Andrew's monotone chain; it sorts pts in place and returns
// the hull without collinear points (one point for a single distinct
// point, two for collinear input).
func convexHull(pts []point) []point {
	if len(pts) == 0 {
		return nil
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].less(pts[j]) })
	uniq := pts[:1]
	for _, p := range pts[1:] {
		if !p.equal(uniq[len(uniq)-1]) {
			uniq = append(uniq, p)
		}
	}
	if len(uniq) < 3 {
		return append([]point(nil), uniq...)
	}
	hull := make([]point, 0, 2*len(uniq))
	for _, p := range uniq {
		for len(hull) >= 2 && cross3(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(uniq) - 2; i >= 0; i-- {
		p := uniq[i]
		for len(hull) >= lower && cross3(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}

// rotRect is a rotated rectangle: center c, unit axis u along its width w
// (the more horizontal side), height h along u's perpendicular.
type rotRect struct {
	c    point
	u    point
	w, h float64
}

// minAreaRect is the smallest rectangle around a convex hull: one of its
// sides lies on a hull edge (the rotating-calipers theorem), so trying
// every edge's direction finds it. Hulls of text regions have tens of
// points, so the quadratic scan costs nothing worth a cleverer one.
func minAreaRect(hull []point) rotRect {
	switch len(hull) {
	case 0:
		return rotRect{u: point{1, 0}}
	case 1:
		return rotRect{c: hull[0], u: point{1, 0}}
	}
	best := rotRect{}
	bestArea := math.Inf(1)
	for i := range hull {
		e := hull[(i+1)%len(hull)].sub(hull[i])
		if e.norm() == 0 {
			continue
		}
		u := e.unit()
		v := u.perp()
		minU, maxU := math.Inf(1), math.Inf(-1)
		minV, maxV := math.Inf(1), math.Inf(-1)
		for _, p := range hull {
			a, b := p.dot(u), p.dot(v)
			minU, maxU = math.Min(minU, a), math.Max(maxU, a)
			minV, maxV = math.Min(minV, b), math.Max(maxV, b)
		}
		area := (maxU - minU) * (maxV - minV)
		if area < bestArea-1e-9 {
			bestArea = area
			c := u.scale((minU + maxU) / 2).add(v.scale((minV + maxV) / 2))
			best = rotRect{c: c, u: u, w: maxU - minU, h: maxV - minV}
		}
	}
	return best.canonical()
}

// canonical turns the rectangle so that u is the more horizontal axis and
// points right; the same rectangle, described the way text reads.
func (r rotRect) canonical() rotRect {
	if math.Abs(r.u.x) < math.Abs(r.u.y) {
		r.u = r.u.perp()
		r.w, r.h = r.h, r.w
	}
	if r.u.x < 0 || (r.u.x == 0 && r.u.y < 0) {
		r.u = r.u.scale(-1)
	}
	return r
}

// corners returns the rectangle's corners clockwise (in image
// coordinates, y down) from the top-left one.
func (r rotRect) corners() [4]point {
	hu := r.u.scale(r.w / 2)
	hv := r.u.perp().scale(r.h / 2) // u rotated +90°: points down-ish when u points right
	return orderClockwise([4]point{
		r.c.sub(hu).sub(hv),
		r.c.add(hu).sub(hv),
		r.c.add(hu).add(hv),
		r.c.sub(hu).add(hv),
	})
}

// minSide is the rectangle's shorter side.
func (r rotRect) minSide() float64 { return math.Min(r.w, r.h) }

// unclip grows the rectangle back to the text it came from: DB detectors
// are trained on text shrunk by area*(1-r²)/perimeter, and PaddleOCR
// undoes it with a round-joined polygon offset of area*ratio/perimeter.
// For a rectangle the minimum-area rectangle around that offset polygon is
// the rectangle with every side moved out by the distance, exactly.
func (r rotRect) unclip(ratio float64) rotRect {
	d := unclipDistance(r.w, r.h, ratio)
	r.w += 2 * d
	r.h += 2 * d
	return r
}

// unclipDistance is area*ratio/perimeter for a w x h rectangle.
func unclipDistance(w, h, ratio float64) float64 {
	per := 2 * (w + h)
	if per == 0 {
		return 0
	}
	return w * h * ratio / per
}

// orderClockwise orders four corners the way PaddleOCR's get_mini_boxes
// does: the two leftmost are the left side (upper one first), the two
// rightmost the right side; the result runs top-left, top-right,
// bottom-right, bottom-left.
func orderClockwise(p [4]point) [4]point {
	s := p
	sort.SliceStable(s[:], func(i, j int) bool { return s[i].x < s[j].x })
	tl, bl := s[0], s[1]
	if bl.y < tl.y {
		tl, bl = bl, tl
	}
	tr, br := s[2], s[3]
	if br.y < tr.y {
		tr, br = br, tr
	}
	return [4]point{tl, tr, br, bl}
}

// sortQuads puts regions in reading order with PaddleOCR's sorted_boxes
// rule: by the top-left corner's y then x, then a pass that swaps
// neighbours whose tops are within 10 px into left-to-right order.
func sortQuads(qs []Quad) {
	sort.SliceStable(qs, func(i, j int) bool {
		a, b := qs[i][0], qs[j][0]
		if a[1] != b[1] {
			return a[1] < b[1]
		}
		return a[0] < b[0]
	})
	for i := 0; i < len(qs)-1; i++ {
		for j := i; j >= 0; j-- {
			if abs(qs[j+1][0][1]-qs[j][0][1]) < 10 && qs[j+1][0][0] < qs[j][0][0] {
				qs[j], qs[j+1] = qs[j+1], qs[j]
			} else {
				break
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// homography maps the four from-points onto the four to-points (a
// projective transform, cv2.getPerspectiveTransform); ok is false when the
// points are degenerate.
func homography(from, to [4]point) (h [9]float64, ok bool) {
	// Unknowns h0..h7 with h8 = 1; two equations per point pair.
	var a [8][9]float64
	for i := 0; i < 4; i++ {
		x, y := from[i].x, from[i].y
		X, Y := to[i].x, to[i].y
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -x * X, -y * X, X}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -x * Y, -y * Y, Y}
	}
	for col := 0; col < 8; col++ {
		piv := col
		for r := col + 1; r < 8; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-12 {
			return h, false
		}
		a[col], a[piv] = a[piv], a[col]
		for r := 0; r < 8; r++ {
			if r == col {
				continue
			}
			f := a[r][col] / a[col][col]
			for k := col; k < 9; k++ {
				a[r][k] -= f * a[col][k]
			}
		}
	}
	for i := 0; i < 8; i++ {
		h[i] = a[i][8] / a[i][i]
		if math.IsNaN(h[i]) || math.IsInf(h[i], 0) {
			return h, false
		}
	}
	h[8] = 1
	return h, true
}
