package ocr

import (
	"slices"
	"sort"
	"strings"
)

// inkBox is the bounding box of one connected component of a line's ink,
// in the recognizer's input columns and rows.
type inkBox struct{ x0, x1, y0, y1, n int }

func (b inkBox) height() int { return b.y1 - b.y0 + 1 }

// lineInk is a line as the recognizer saw it (recHeight rows of w
// columns), as the boxes of its ink's connected components.
type lineInk struct {
	w     int
	boxes []inkBox // left to right by x0
}

// inkOf finds the ink of a line image (luminance 0..255, w x h): pixels
// darker than halfway between the paper (the 95th percentile) and the ink
// (the 2nd), joined 8-connected into components. A line with too little
// contrast to tell them apart has none.
func inkOf(lum []float32, w, h int) lineInk {
	if w <= 0 || h <= 0 || len(lum) < w*h {
		return lineInk{}
	}
	var hist [256]int
	for _, v := range lum[:w*h] {
		hist[min(max(int(v), 0), 255)]++
	}
	pct := func(q float64) int {
		need, seen := int(q*float64(w*h)), 0
		for v, n := range hist {
			if seen += n; seen > need {
				return v
			}
		}
		return 255
	}
	inkV, paperV := pct(0.02), pct(0.95)
	if paperV-inkV < 40 {
		return lineInk{w: w}
	}
	thr := float32(inkV+paperV) / 2
	label := make([]int32, w*h)
	var boxes []inkBox
	var stack []int
	for i := range label {
		if label[i] != 0 || lum[i] >= thr {
			continue
		}
		id := int32(len(boxes) + 1)
		b := inkBox{x0: i % w, x1: i % w, y0: i / w, y1: i / w}
		label[i] = id
		stack = append(stack[:0], i)
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := j%w, j/w
			b.x0, b.x1, b.y0, b.y1 = min(b.x0, x), max(b.x1, x), min(b.y0, y), max(b.y1, y)
			b.n++
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					k := ny*w + nx
					if label[k] == 0 && lum[k] < thr {
						label[k] = id
						stack = append(stack, k)
					}
				}
			}
		}
		boxes = append(boxes, b)
	}
	sort.Slice(boxes, func(a, b int) bool { return boxes[a].x0 < boxes[b].x0 })
	return lineInk{w: w, boxes: boxes}
}

// Letters whose height on a line is known from the letter alone: small
// letters without ascender or descender, and capitals, digits and
// ascenders (within a few percent of each other in most faces). Case
// twins, 'i' and 'j' (dots), and 't' (short) are in neither.
const (
	xHeightRefs   = "aemnr"
	capHeightRefs = "ABDEFGHKLMNPRTY123456789bdfhkl"
)

// caseByHeight settles the case of the case twins (caseTwins) and reads a
// '0' as 'o', by the glyph's own height against the line's small letters
// and capitals: what the recognizer, which sees a line scaled to 48 px,
// cannot tell from the shape ("Lx09", "wow" for "WOW", "n0." for "no.").
// Each ink component goes to the character whose window holds its centre
// (the columns nearer that character's centre than its neighbours',
// spaces aside); a character's glyph is the largest component in its
// window with the pieces above or below it. A glyph whose ink reaches past
// a neighbour's centre is glyphs run together (touching letters, a blur)
// and is not measured. The line needs both kinds of reference letters
// (xHeightRefs, capHeightRefs), measured the same way and clearly apart;
// a twin within 35% of the gap from one height takes that case, and the
// rest is left to FixCase. chars' classes index dict from 1; T is the
// recognizer's steps across ink.w columns. A character is only ever made
// one that allow (DecodeCTC's; nil: all) lets the decoding read: a model
// that reads digits alone keeps its zeros.
func caseByHeight(chars []ctcChar, dict []string, allow []bool, ink lineInk, T int) {
	if len(ink.boxes) == 0 || T <= 0 || len(chars) == 0 {
		return
	}
	class := make(map[string]int, len(dict))
	for i, s := range dict {
		class[s] = i + 1
	}
	text := func(c ctcChar) string {
		if c.class < 1 || c.class > len(dict) {
			return ""
		}
		return dict[c.class-1]
	}
	cols := float64(ink.w) / float64(T)
	var idx []int // the characters that get a window, left to right
	for i, c := range chars {
		if s := text(c); s != "" && s != " " {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	cx := func(i int) float64 { return (chars[i].centre() + 0.5) * cols }
	inWindow := make([][]inkBox, len(chars))
	for _, b := range ink.boxes {
		mid := float64(b.x0+b.x1) / 2
		// the first character whose window reaches past mid
		k := sort.Search(len(idx)-1, func(k int) bool { return (cx(idx[k])+cx(idx[k+1]))/2 >= mid })
		inWindow[idx[k]] = append(inWindow[idx[k]], b)
	}
	// A character's glyph is the largest component in its window, with
	// the pieces that stand over or under it (at least half of the
	// narrower's columns shared): a glyph the binarization broke (the thin
	// diagonals of a small W) is whole again, and a shard of a neighbour
	// beside it is not taken in.
	boxes := make([]inkBox, len(chars))
	found := make([]bool, len(chars))
	for i, bs := range inWindow {
		if len(bs) == 0 {
			continue
		}
		m := slices.MaxFunc(bs, func(a, b inkBox) int { return a.n - b.n })
		u := m
		for _, b := range bs {
			shared := min(b.x1, m.x1) - max(b.x0, m.x0) + 1
			if 2*shared >= min(b.x1-b.x0, m.x1-m.x0)+1 {
				u.x0, u.x1, u.y0, u.y1 = min(u.x0, b.x0), max(u.x1, b.x1), min(u.y0, b.y0), max(u.y1, b.y1)
			}
		}
		boxes[i], found[i] = u, true
	}
	height := func(i int) (int, bool) {
		if !found[i] {
			return 0, false
		}
		k := slices.Index(idx, i)
		b := boxes[i]
		if k > 0 && float64(b.x0) < cx(idx[k-1]) || k+1 < len(idx) && float64(b.x1) > cx(idx[k+1]) {
			return 0, false
		}
		return b.height(), true
	}
	var xs, cs []int
	for i, c := range chars {
		h, ok := height(i)
		if !ok {
			continue
		}
		switch s := text(c); {
		case strings.Contains(xHeightRefs, s):
			xs = append(xs, h)
		case strings.Contains(capHeightRefs, s):
			cs = append(cs, h)
		}
	}
	if len(xs) == 0 || len(cs) == 0 {
		return
	}
	hx, hc := float64(medianInt(xs)), float64(medianInt(cs))
	if hc < 1.2*hx || hc-hx < 3 {
		return
	}
	for i, c := range chars {
		s := text(c)
		if len(s) != 1 || !strings.Contains(caseTwins+"0", s) {
			continue
		}
		h, ok := height(i)
		if !ok {
			continue
		}
		r := (float64(h) - hx) / (hc - hx)
		var want string
		switch {
		case r >= 0.65 && s != "0":
			want = strings.ToUpper(s)
		case r <= 0.35 && s == "0":
			want = "o"
		case r <= 0.35:
			want = strings.ToLower(s)
		default:
			continue
		}
		if k, ok := class[want]; ok && (allow == nil || k < len(allow) && allow[k]) {
			chars[i].class = k
		}
	}
}

func medianInt(xs []int) int {
	s := append([]int(nil), xs...)
	sort.Ints(s)
	return s[len(s)/2]
}
