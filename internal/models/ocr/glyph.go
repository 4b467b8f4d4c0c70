package ocr

import (
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
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
	// em and baseline are the median height and bottom row of the
	// components taller than a quarter of the line (its glyphs, not its
	// dots and marks); em is 0 when there are none.
	em, baseline int
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
	ink := lineInk{w: w, boxes: boxes}
	var hs, bottoms []int
	for _, b := range boxes {
		if b.height() > recHeight/4 {
			hs, bottoms = append(hs, b.height()), append(bottoms, b.y1)
		}
	}
	if len(hs) > 0 {
		ink.em, ink.baseline = medianInt(hs), medianInt(bottoms)
	}
	return ink
}

// Letters whose height on a line is known from the letter alone: small
// letters without ascender or descender, and capitals and ascenders
// (within a few percent of each other in most faces). Case twins, 'i' and
// 'j' (dots), 't' (short) and digits (old-style figures stand as high as
// small letters) are in neither.
const (
	xHeightRefs   = "aemnr"
	capHeightRefs = "ABDEFGHKLMNPRTYbdfhkl"
)

// caseByHeight settles the case of the case twins (caseTwins) and reads a
// '0' as 'o', by the glyph's own height against the line's small letters
// and capitals: what the recognizer, which sees a line scaled to 48 px,
// cannot tell from the shape ("Lx09", "wow" for "WOW", "n0." for "no.").
// Each ink component goes to the character whose window holds its centre
// (the columns nearer that character's centre than its neighbours',
// spaces aside); a character's glyph is the largest component in its
// window with the pieces above or below it. A glyph whose ink reaches past
// a neighbour's centre, or whose own centre a neighbour's piece covers, is
// glyphs run together (touching letters, a blur) and is not measured. The
// line needs both kinds of reference letters (xHeightRefs,
// capHeightRefs), measured the same way and clearly apart; a twin within
// 35% of the gap from one height takes that case, a zero as small as the
// small letters becomes 'o' unless a digit stands beside it, and the rest
// is left to FixCase. chars' classes index dict from 1; T is the
// recognizer's steps across ink.w columns. A character is only ever made
// one that allow (DecodeCTC's; nil: all) lets the decoding read: a model
// that reads digits alone keeps its zeros.
func caseByHeight(chars []ctcChar, dict []string, allow []bool, ink lineInk, T int) {
	if len(ink.boxes) == 0 || T <= 0 || len(chars) == 0 {
		return
	}
	text := func(i int) string { return charText(chars, dict, i) }
	cols := float64(ink.w) / float64(T)
	var idx []int // the characters that get a window, left to right
	for i := range chars {
		if s := text(i); s != "" && s != " " {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	cx := func(k int) float64 { return (chars[idx[k]].centre() + 0.5) * cols }
	// inWindow[k] are the components whose centre is in the k-th
	// character's window; covered[k] says a component in another's window
	// spans this character's centre: its glyph ran into a neighbour's, and
	// what is left in its own window is a shard ("KX" in a condensed
	// italic, where K's piece takes most of the X).
	inWindow := make([][]inkBox, len(idx))
	covered := make([]bool, len(idx))
	for _, b := range ink.boxes {
		mid := float64(b.x0+b.x1) / 2
		// the first character whose window reaches past mid
		w := sort.Search(len(idx)-1, func(k int) bool { return (cx(k)+cx(k+1))/2 >= mid })
		inWindow[w] = append(inWindow[w], b)
		for k := range idx {
			if k != w && float64(b.x0) <= cx(k) && cx(k) <= float64(b.x1) {
				covered[k] = true
			}
		}
	}
	// A character's glyph is the largest component in its window, with
	// the pieces that stand over or under it (at least half of the
	// narrower's columns shared): a glyph the binarization broke (the thin
	// diagonals of a small W) is whole again, and a shard of a neighbour
	// beside it is not taken in. It is measured only when its ink stays
	// within its neighbours' centres and no neighbour's covers its own:
	// glyphs run together (touching letters, a blur) say nothing of
	// either's height.
	heights := make([]int, len(idx)) // 0: not measured
	for k, bs := range inWindow {
		if len(bs) == 0 || covered[k] {
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
		if k > 0 && float64(u.x0) < cx(k-1) || k+1 < len(idx) && float64(u.x1) > cx(k+1) {
			continue
		}
		heights[k] = u.height()
	}
	var xs, cs []int
	for k, i := range idx {
		switch s := text(i); {
		case heights[k] == 0:
		case strings.Contains(xHeightRefs, s):
			xs = append(xs, heights[k])
		case strings.Contains(capHeightRefs, s):
			cs = append(cs, heights[k])
		}
	}
	if len(xs) == 0 || len(cs) == 0 {
		return
	}
	hx, hc := float64(medianInt(xs)), float64(medianInt(cs))
	if hc < 1.2*hx || hc-hx < 3 {
		return
	}
	digit := func(i int) bool { return isDigit(text(i)) }
	for k, i := range idx {
		s := text(i)
		if len(s) != 1 || !strings.Contains(caseTwins+"0", s) || heights[k] == 0 {
			continue
		}
		r := (float64(heights[k]) - hx) / (hc - hx)
		var want string
		switch {
		case r >= 0.65 && s != "0":
			want = strings.ToUpper(s)
		case r <= 0.35 && s == "0" && !digit(i-1) && !digit(i+1):
			// A zero beside a digit stays one: old-style figures stand
			// as high as small letters ("100" in a book face).
			want = "o"
		case r <= 0.35 && s != "0":
			want = strings.ToLower(s)
		default:
			continue
		}
		if c := slices.Index(dict, want) + 1; c > 0 && (allow == nil || c < len(allow) && allow[c]) {
			chars[i].class = c
		}
	}
}

// charText is what chars[i] reads in dict ("" for a class outside it, the
// space class included, and for i out of range).
func charText(chars []ctcChar, dict []string, i int) string {
	if i < 0 || i >= len(chars) || chars[i].class < 1 || chars[i].class > len(dict) {
		return ""
	}
	return dict[chars[i].class-1]
}

// nearestChar is the index of the character of chars (not a space) whose
// centre, at cols ink columns a step, is nearest column x; -1 if none.
func nearestChar(chars []ctcChar, dict []string, cols, x float64) int {
	ci, d := -1, math.Inf(1)
	for i, c := range chars {
		if s := charText(chars, dict, i); s == "" || s == " " {
			continue
		}
		if dd := math.Abs((c.centre()+0.5)*cols - x); dd < d {
			ci, d = i, dd
		}
	}
	return ci
}

// isDigit says whether s is one ASCII digit.
func isDigit(s string) bool { return len(s) == 1 && s[0] >= '0' && s[0] <= '9' }

func medianInt(xs []int) int {
	s := append([]int(nil), xs...)
	sort.Ints(s)
	return s[len(s)/2]
}

// markMinProb is how likely the recognizer must find a full stop or a
// comma, at a step the blank won, for lostMarks to look for its ink.
const markMinProb = 0.03

// lostMarks puts back the full stops and commas that the blank
// outweighed. At 16 px, blurred or saved as JPEG, the recognizer sees a
// line's final full stop (the class at 5 to 35% at the step over it) and
// still lets the blank win ("paid in full"). In each run of blank steps
// (between two characters the model read, before the first, after the
// last) the step where '.' or ',' is likeliest gets that mark when its
// probability is at least markMinProb and the line's ink has a dot there
// that nothing read accounts for: a component at most a quarter of the
// line's height high and wide, standing on the baseline (lineInk's) or
// reaching below it, centred within
// 1.5 steps of that step, whose nearest character is a letter or a digit
// (a letter is never a lone dot; a mark the model read may be this one),
// and with nothing above it in its columns (not a colon's lower dot, not
// a foot broken off a letter). The ink settles which mark: one reaching 2
// px below the baseline is a comma, and so is one three digits before a
// number's decimal point (a thousands comma whose tail the blur took). A
// run beside a mark the model read gets none, and a mark put back does
// not count in the line's score. chars' classes index dict from 1 and lie
// in order; T is the recognizer's steps across ink.w columns; the marks
// are the classes allow lets the decoding read.
func lostMarks(chars []ctcChar, probs []float32, T, C int, dict []string, allow []bool, ink lineInk) []ctcChar {
	if len(ink.boxes) == 0 || T <= 0 || ink.w <= 0 || len(probs) < T*C {
		return chars
	}
	class := func(m string) int {
		if c := slices.Index(dict, m) + 1; c > 0 && c < C && (allow == nil || c < len(allow) && allow[c]) {
			return c
		}
		return 0
	}
	stop, comma := class("."), class(",")
	var marks []int
	for _, c := range []int{stop, comma} {
		if c > 0 {
			marks = append(marks, c)
		}
	}
	if len(marks) == 0 || ink.em == 0 {
		return chars
	}
	baseline := ink.baseline
	cols := float64(ink.w) / float64(T)
	text := func(i int) string { return charText(chars, dict, i) }
	small := func(b inkBox) bool { return b.height() <= recHeight/4 && b.x1-b.x0+1 <= recHeight/4 }
	overlaps := func(a, b inkBox) bool { return a.x0 <= b.x1 && b.x0 <= a.x1 }
	// dots are the components that may be a lost mark: dot-sized, on the
	// baseline, nearest a letter or a digit, with nothing above them in
	// their columns (not a colon's lower dot, not a foot broken off the
	// letter over it) and not sticking out of a taller glyph's lower left
	// (a condensed italic N's broken foot).
	var dots []inkBox
	for _, b := range ink.boxes {
		if !small(b) || b.y1 < baseline-2 || slices.ContainsFunc(ink.boxes, func(o inkBox) bool {
			return overlaps(o, b) && (o.y1 < b.y0 || !small(o) && o.x0 > b.x0)
		}) {
			continue
		}
		near := text(nearestChar(chars, dict, cols, float64(b.x0+b.x1)/2))
		if r, _ := utf8.DecodeRuneInString(near); unicode.IsLetter(r) || unicode.IsDigit(r) {
			dots = append(dots, b)
		}
	}
	if len(dots) == 0 {
		return chars
	}
	isMark := func(i int) bool { return i >= 0 && i < len(chars) && slices.Contains(marks, chars[i].class) }
	// found is the mark put back in the run of blank steps before
	// chars[g] (after the last character when g is len(chars)), if any.
	found := func(g int) (ctcChar, bool) {
		if isMark(g-1) || isMark(g) {
			return ctcChar{}, false
		}
		lo, hi := 0, T-1
		if g > 0 {
			lo = chars[g-1].last + 1
		}
		if g < len(chars) {
			hi = chars[g].first - 1
		}
		mark, at, p := 0, -1, float32(markMinProb)
		for t := lo; t <= hi; t++ {
			for _, m := range marks {
				if v := probs[t*C+m]; v >= p {
					mark, at, p = m, t, v
				}
			}
		}
		if at < 0 {
			return ctcChar{}, false
		}
		d := slices.IndexFunc(dots, func(b inkBox) bool {
			return math.Abs(float64(b.x0+b.x1)/2-(float64(at)+0.5)*cols) <= 1.5*cols
		})
		if d < 0 {
			return ctcChar{}, false
		}
		// Its shape says which: a comma reaches below the baseline; and a
		// mark in a number, three digits before its decimal point, is a
		// thousands comma ("2,450.00" blurred, its comma's tail gone).
		if comma > 0 && (dots[d].y1 >= baseline+2 || mark == stop && thousands(chars, g, dict)) {
			mark = comma
		}
		return ctcChar{class: mark, first: at, last: at, prob: p, inserted: true}, true
	}
	out := make([]ctcChar, 0, len(chars)+1)
	for g := 0; g <= len(chars); g++ {
		if m, ok := found(g); ok {
			out = append(out, m)
		}
		if g < len(chars) {
			out = append(out, chars[g])
		}
	}
	return out
}

// thousands says whether a mark put before chars[g] stands in a number
// three digits before its decimal point: a digit before it, and three
// digits then a '.' after it.
func thousands(chars []ctcChar, g int, dict []string) bool {
	digit := func(i int) bool { return isDigit(charText(chars, dict, i)) }
	return digit(g-1) && digit(g) && digit(g+1) && digit(g+2) && charText(chars, dict, g+3) == "."
}

// markGap is how much wider than the gap before a mark the gap after it
// must be, in the line's glyph heights, for markSpaces to put a space
// there.
const markGap = 0.25

// timeGap is markGap for a colon between digits (a time, a ratio): blur
// takes a digit's thin ends, and a blurred "9:30" at 15 px read a gap a
// quarter of the glyph height wider after the colon than before it; a
// date's colon before an amount ("2025-01-31: 74.20", blurred) read 0.38.
const timeGap = 1.0 / 3

// markSpaces puts a space after a full stop, comma, colon or semicolon
// that the ink shows set tight on the character before it and apart from
// the one after it: the ink's gap after the mark wider than its gap
// before by markGap of the line's glyph height (lineInk.em). The mark is a few
// pixels wide, so a word gap after it is short in the recognizer's steps
// and the rules that read the steps (insertSpaces) miss it; punctSpaces
// then leaves a colon after a digit tight, for a time's sake
// ("2025-01-31:74.20", "Nov 3:-18.60", "no.7Q2"). A time's colon, a
// decimal point and a thousands comma stand as close to the character
// after them as to the one before (a colon between digits needs timeGap).
// Only a word takes the space: a letter or a digit, or a sign, quote or
// bracket before one, after the mark; not another mark (an ellipsis, a
// closing quote or bracket: a straight quote closes when the line has
// opened one), and not the next letter of initials ("U.S.A.", "i.e."). A
// piece of ink reaching above the small letters is not a mark's (the top
// of a condensed italic 6, broken off beside a colon). Each component
// goes to the character (not a space) whose centre is nearest its own,
// and a character's extent is its components'; a mark beside a space,
// beside a character without ink, or beside one whose centre another's
// component covers (run together with it: its extent is a speck) is left
// alone. space is the space class;
// chars' classes index dict from 1, T steps across ink.w columns.
func markSpaces(chars []ctcChar, dict []string, space int, ink lineInk, T int) []ctcChar {
	if len(ink.boxes) == 0 || T <= 0 || len(chars) < 3 {
		return chars
	}
	text := func(i int) string { return charText(chars, dict, i) }
	cols := float64(ink.w) / float64(T)
	// Each component goes to the character (not a space) whose centre is
	// nearest its own; a character's extent is its components'. A
	// character whose centre another character's component covers has
	// run into it (two small zeros as one component), and its own extent
	// is a speck: no gap beside it is measured.
	type extent struct{ x0, x1 int }
	ext := make([]extent, len(chars))
	for i := range ext {
		ext[i] = extent{1 << 30, -1}
	}
	if ink.em == 0 {
		return chars
	}
	em, baseline := float64(ink.em), float64(ink.baseline)
	isMark := func(i int) bool { return i >= 0 && strings.Contains(".,:;", text(i)) && text(i) != "" }
	covered := make([]bool, len(chars))
	for _, b := range ink.boxes {
		ci := nearestChar(chars, dict, cols, float64(b.x0+b.x1)/2)
		if ci < 0 {
			continue
		}
		for k, c := range chars {
			if x := (c.centre() + 0.5) * cols; k != ci && float64(b.x0) <= x && x <= float64(b.x1) {
				covered[k] = true
			}
		}
		// A mark's ink stays below the small letters' tops; a piece
		// reaching higher is a neighbour's, broken off (the top of a
		// condensed italic 6 beside a colon).
		if isMark(ci) && float64(b.y0) < baseline-0.85*em {
			continue
		}
		ext[ci].x0, ext[ci].x1 = min(ext[ci].x0, b.x0), max(ext[ci].x1, b.x1)
	}
	alnum := func(i int) bool {
		r, _ := utf8.DecodeRuneInString(text(i))
		return unicode.IsLetter(r) || unicode.IsDigit(r)
	}
	quotes := 0 // straight double quotes so far: an odd count means one is open
	out := make([]ctcChar, 0, len(chars)+2)
	for i, c := range chars {
		out = append(out, c)
		if text(i) == "\"" {
			quotes++
		}
		mark := text(i)
		if i == 0 || i+1 >= len(chars) || !isMark(i) || text(i+1) == "\"" && quotes%2 == 1 {
			continue
		}
		// A word follows: a letter or a digit, or a sign, a quote or a
		// bracket before one; not a mark (an ellipsis, ".,", a closing
		// quote). Initials and abbreviations stay tight ("U.S.A.",
		// "i.e.").
		if next := text(i + 1); !alnum(i+1) && (strings.Contains(".,:;!?)]}", next) || !alnum(i+2)) ||
			mark == "." && alnum(i+1) && !isDigit(text(i+1)) && text(i+2) == "." {
			continue
		}
		p, m, n := ext[i-1], ext[i], ext[i+1]
		if p.x1 < 0 || m.x1 < 0 || n.x1 < 0 || covered[i-1] || covered[i] || covered[i+1] {
			continue
		}
		// A colon between digits is a time's or a ratio's unless the
		// gap says otherwise more clearly (timeGap).
		need := markGap
		if mark == ":" && isDigit(text(i-1)) && isDigit(text(i+1)) {
			need = timeGap
		}
		before, after := m.x0-p.x1, n.x0-m.x1
		if float64(after-before) >= need*em {
			out = append(out, ctcChar{class: space, first: c.last + 1, last: chars[i+1].first - 1, inserted: true})
		}
	}
	return out
}
