package ocr

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/pages"
)

// glyphLine draws a line for caseByHeight: one glyph a CTC step (8
// columns), a rectangle standing on row 40 as tall as heights says (0: a
// space), and the greedy decoding that reads it as text.
type glyphLine struct {
	lum   []float32
	w     int
	chars []ctcChar
}

const testGlyphDict = "aemnrBDKLxXoO01sSwW.-,:3479)\"25"

func drawLine(text string, heights []int) glyphLine {
	w := 8 * len(heights)
	l := glyphLine{lum: make([]float32, w*recHeight), w: w}
	for i := range l.lum {
		l.lum[i] = 230
	}
	for k, h := range heights {
		l.rect(8*k+1, 8*k+6, 40-h+1, 40)
	}
	for k, r := range text {
		if r == ' ' {
			l.chars = append(l.chars, ctcChar{class: len(testGlyphDict) + 1, first: k, last: k})
			continue
		}
		l.chars = append(l.chars, ctcChar{class: strings.IndexRune(testGlyphDict, r) + 1, first: k, last: k})
	}
	return l
}

func (l glyphLine) rect(x0, x1, y0, y1 int) {
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			l.lum[y*l.w+x] = 20
		}
	}
}

func (l glyphLine) read() string { return l.readAllowing(nil) }

// glyphText is what chars read in dict, the classes past it spaces.
func glyphText(chars []ctcChar, dict []string) string {
	var sb strings.Builder
	for _, c := range chars {
		if c.class > len(dict) {
			sb.WriteByte(' ')
		} else {
			sb.WriteString(dict[c.class-1])
		}
	}
	return sb.String()
}

func (l glyphLine) readAllowing(allow []bool) string {
	dict := strings.Split(testGlyphDict, "")
	chars := slices.Clone(l.chars)
	caseByHeight(chars, dict, allow, inkOf(l.lum, l.w, recHeight), len(chars))
	return glyphText(chars, dict)
}

func TestCaseByHeight(t *testing.T) {
	const x, X = 20, 30 // a small letter's height, a capital's
	for _, tc := range []struct {
		name, text string
		heights    []int
		want       string
	}{
		{"a small x between capitals is a capital", "LxD aem", []int{X, X, X, 0, x, x, x}, "LXD aem"},
		{"a capital drawn small is small", "aSe BD", []int{x, x, x, 0, X, X}, "ase BD"},
		{"every twin of a word", "sos ma BD", []int{X, X, X, 0, x, x, 0, X, X}, "SOS ma BD"},
		{"a small zero is an o", "n0. BD", []int{x, x, 3, 0, X, X}, "no. BD"},
		{"a tall zero stays", "B0D am", []int{X, X, X, 0, x, x}, "B0D am"},
		{"midway: left alone", "axe BD", []int{x, 25, x, 0, X, X}, "axe BD"},
		{"no small letters to measure by", "LxD BD", []int{X, x, X, 0, X, X}, "LxD BD"},
		{"references too close", "LXD aem", []int{23, 20, 23, 0, 20, 20, 20}, "LXD aem"},
	} {
		if got := drawLine(tc.text, tc.heights).read(); got != tc.want {
			t.Errorf("%s: %q reads %q, want %q", tc.name, tc.text, got, tc.want)
		}
	}

	// A tall x broken into two pieces, one above the other, is measured
	// whole.
	l := drawLine("LxD aem", []int{X, 0, X, 0, x, x, x})
	l.rect(9, 14, 11, 24)
	l.rect(9, 14, 26, 40)
	if got := l.read(); got != "LXD aem" {
		t.Errorf("a broken glyph: %q, want %q", got, "LXD aem")
	}
	// A glyph run into its neighbour (one component across both
	// centres) says nothing of either.
	l = drawLine("Lx aem BD", []int{X, 0, 0, x, x, x, 0, X, X})
	l.rect(5, 17, 11, 40)
	if got := l.read(); got != "Lx aem BD" {
		t.Errorf("touching glyphs: %q, want %q", got, "Lx aem BD")
	}
	// Old-style figures stand as high as small letters: a zero beside a
	// digit stays a zero.
	if got := drawLine("am 100 BD", []int{x, x, 0, x, x, x, 0, X, X}).read(); got != "am 100 BD" {
		t.Errorf("old-style figures: %q, want %q", got, "am 100 BD")
	}
	// A glyph run into its neighbour on one side only: the piece of K
	// and most of X lies in K's window, and the shard left in X's says
	// nothing of X.
	l = drawLine("KX aem BD", []int{0, 0, 0, x, x, x, 0, X, X})
	l.rect(1, 12, 11, 40)
	l.rect(14, 14, 33, 40)
	if got := l.read(); got != "KX aem BD" {
		t.Errorf("a shard left of a glyph run into its neighbour: %q, want %q", got, "KX aem BD")
	}
	// A model that may not read 'o' (a charset of digits and capitals)
	// keeps its small zero.
	l = drawLine("n0. BD", []int{x, x, 3, 0, X, X})
	allow := CharsetClasses(strings.Split(testGlyphDict, ""), strings.Split("BDLnX0.", ""))
	if got := l.readAllowing(allow); got != "n0. BD" {
		t.Errorf("a charset without o: %q, want %q", got, "n0. BD")
	}
	// A thin shard beside a small O, in its window but not over it, is
	// not taken for part of it.
	l = drawLine("BOD aem", []int{X, 0, X, 0, x, x, x})
	l.rect(10, 13, 21, 40)
	l.rect(15, 15, 11, 40)
	if got := l.read(); got != "BoD aem" {
		t.Errorf("a shard beside a glyph: %q, want %q", got, "BoD aem")
	}
}

func TestInkOf(t *testing.T) {
	l := drawLine("aB", []int{20, 30})
	ink := inkOf(l.lum, l.w, recHeight)
	if len(ink.boxes) != 2 || ink.boxes[0].height() != 20 || ink.boxes[1].height() != 30 || ink.boxes[1].x0 != 9 {
		t.Errorf("boxes %+v, want a 20-high one and a 30-high one from column 9", ink.boxes)
	}
	if ink.em != 30 || ink.baseline != 40 {
		t.Errorf("em %d, baseline %d; want the glyphs' median height 30 and bottom row 40", ink.em, ink.baseline)
	}
	// Paper and ink too close to tell apart: no ink at all.
	faint := slices.Clone(l.lum)
	for i, v := range faint {
		faint[i] = 200 + v/10
	}
	if ink := inkOf(faint, l.w, recHeight); len(ink.boxes) != 0 {
		t.Errorf("a line of 20 levels' contrast has %d components", len(ink.boxes))
	}
	if ink := inkOf(nil, 0, recHeight); len(ink.boxes) != 0 {
		t.Error("an empty line has ink")
	}
}

// TestInkOnPages decodes the recognizer's readings of the bench's
// passages, set small (14 and 17 px, as on an A4 page at 150 dpi) in both
// Go fonts and saved as JPEG at quality 40, with the lines' ink and
// without, FixCase after both, as the pipeline does: what the ink settles
// (the glyphs' heights, caseByHeight; the marks the blank outweighed,
// lostMarks) must mend more characters than it spoils, on every page at
// worst leaving it as it was.
func TestInkOnPages(t *testing.T) {
	det, _, dict := realModels(t)
	rec := latinRec(t)
	latin := LatinClasses(dict)
	read := headDecoder(dict, latin, DefaultSpaceRule())
	var with, without int
	for _, ttf := range [][]byte{goregular.TTF, gomono.TTF} {
		for _, size := range []float64{14, 17} {
			for _, lines := range slices.Concat(pages.Lines, pages.NoisyLines, pages.HeldOutLines) {
				img, err := pages.JPEG(40)(renderPage(t, ttf, size, lines))
				if err != nil {
					t.Fatal(err)
				}
				var a, b []string
				for _, l := range readImageProbs(t, det, rec, img) {
					s, _ := read(l.probs, l.T, l.C, l.ink)
					a = append(a, FixCase(s))
					s, _ = read(l.probs, l.T, l.C, lineInk{})
					b = append(b, FixCase(s))
				}
				want := strings.Join(lines, " ")
				ea, eb := levenshtein(strings.Join(a, " "), want), levenshtein(strings.Join(b, " "), want)
				with, without = with+ea, without+eb
				if ea > eb {
					t.Errorf("%v px: %q read %q with the ink, %q without", size, want, strings.Join(a, " "), strings.Join(b, " "))
				}
			}
		}
	}
	t.Logf("characters wrong: %d with the lines' ink, %d without", with, without)
	if with >= without {
		t.Errorf("the lines' ink mended nothing: %d characters wrong, %d without", with, without)
	}
}

// markLine is a line for lostMarks: the glyphs drawLine draws for text
// (one a step), and the recognizer's output over them, every step a
// blank but the characters' steps and those probs names: a step's class
// and its probability, the blank taking the rest.
func markLine(text string, heights []int, probs map[int]struct {
	mark string
	p    float32
}) (glyphLine, []float32, int) {
	l := drawLine(text, heights)
	// '_' is a blank step
	l.chars = slices.DeleteFunc(l.chars, func(c ctcChar) bool { return c.class == 0 })
	T, C := len(heights), len(testGlyphDict)+2
	out := make([]float32, T*C)
	for t := range T {
		out[t*C] = 1
	}
	for _, c := range l.chars {
		out[c.first*C], out[c.first*C+c.class] = 0.01, 0.99
	}
	for t, m := range probs {
		c := strings.Index(testGlyphDict, m.mark) + 1
		out[t*C], out[t*C+c] = 1-m.p, m.p
	}
	return l, out, C
}

func (l glyphLine) readMarks(probs []float32, C int) string {
	dict := strings.Split(testGlyphDict, "")
	chars := lostMarks(slices.Clone(l.chars), probs, l.w/8, C, dict, nil, inkOf(l.lum, l.w, recHeight))
	return glyphText(chars, dict)
}

func TestLostMarks(t *testing.T) {
	const x = 20
	type mark = struct {
		mark string
		p    float32
	}
	at4 := func(m string, p float32) map[int]mark { return map[int]mark{4: {m, p}} }
	for _, tc := range []struct {
		name  string
		text  string
		probs map[int]mark
		dot   func(l glyphLine) // draws the mark's ink at step 4
		want  string
	}{
		{"a full stop the blank outweighed", "mean", at4(".", 0.3), func(l glyphLine) { l.rect(34, 37, 37, 40) }, "mean."},
		{"at the threshold", "mean", at4(".", markMinProb), func(l glyphLine) { l.rect(34, 37, 37, 40) }, "mean."},
		{"a comma reaches below the baseline", "mean", at4(",", 0.2), func(l glyphLine) { l.rect(34, 36, 37, 44) }, "mean,"},
		{"no ink there", "mean", at4(".", 0.3), func(glyphLine) {}, "mean"},
		{"too unlikely", "mean", at4(".", markMinProb/2), func(l glyphLine) { l.rect(34, 37, 37, 40) }, "mean"},
		{"a dot above the baseline (a hyphen's height)", "mean", at4(".", 0.3), func(l glyphLine) { l.rect(34, 37, 28, 31) }, "mean"},
		{"ink as tall as a letter", "mean", at4(".", 0.3), func(l glyphLine) { l.rect(34, 37, 21, 40) }, "mean"},
		{"a dot two steps away", "mean", map[int]mark{4: {".", 0.3}}, func(l glyphLine) { l.rect(50, 53, 37, 40) }, "mean"},
		{"a colon's lower dot", "mean", at4(".", 0.3), func(l glyphLine) { l.rect(34, 37, 27, 30); l.rect(34, 37, 37, 40) }, "mean"},
		{"a foot broken off a letter", "mean", at4(".", 0.3), func(l glyphLine) {
			for y := 36; y <= 40; y++ {
				for x := 25; x <= 30; x++ {
					l.lum[y*l.w+x] = 230
				}
			}
			l.rect(29, 34, 38, 40)
		}, "mean"},
		{"sticking out of the next glyph's lower left", "mean", at4(".", 0.3), func(l glyphLine) {
			l.rect(35, 42, 21, 33)
			l.rect(39, 45, 21, 40)
			l.rect(33, 36, 38, 40)
		}, "mean"},
		{"ink below the baseline is a comma", "mean", at4(".", 0.3), func(l glyphLine) { l.rect(34, 36, 37, 43) }, "mean,"},
	} {
		heights := []int{x, x, x, x, 0, 0, 0}
		l, probs, C := markLine(tc.text, heights, tc.probs)
		tc.dot(l)
		if got := l.readMarks(probs, C); got != tc.want {
			t.Errorf("%s: %q reads %q, want %q", tc.name, tc.text, got, tc.want)
		}
	}
	// A run beside a mark the model read gets no second one, though the
	// mark's ink lies nearer the letter before it.
	l, probs, C := markLine("mean", []int{x, x, x, x, 0, 0, 0}, at4(".", 0.3))
	l.chars = append(l.chars, ctcChar{class: strings.Index(testGlyphDict, ".") + 1, first: 5, last: 5})
	l.rect(34, 37, 37, 40)
	if got := l.readMarks(probs, C); got != "mean." {
		t.Errorf("beside a full stop read: %q, want %q", got, "mean.")
	}
	// A dot nearest a mark the model read is that mark's.
	l, probs, C = markLine("mea:", []int{x, x, x, 0, 0, 0, 0}, at4(".", 0.3))
	l.rect(26, 29, 25, 28)
	l.rect(26, 29, 37, 40)
	l.rect(33, 36, 37, 40)
	if got := l.readMarks(probs, C); got != "mea:" {
		t.Errorf("a dot nearest a colon: %q, want %q", got, "mea:")
	}
	// A mark three digits before a number's decimal point is a
	// thousands comma.
	l, probs, C = markLine("2_450.00", []int{x, 0, x, x, x, 0, x, x}, map[int]mark{1: {".", 0.3}})
	l.rect(10, 13, 37, 40)
	if got := l.readMarks(probs, C); got != "2,450.00" {
		t.Errorf("a thousands comma: %q, want %q", got, "2,450.00")
	}
	// A mark put back does not count in the line's score: a short line
	// is not dropped for it.
	l, probs, C = markLine("mean", []int{x, x, x, x, 0, 0, 0}, at4(".", 0.05))
	l.rect(34, 37, 37, 40)
	if text, score := decodeWithInk(probs, 7, C, strings.Split(testGlyphDict, ""), nil, DefaultSpaceRule(), inkOf(l.lum, l.w, recHeight)); text != "mean." || score < 0.98 {
		t.Errorf("decoded %q, score %.3f; want \"mean.\", the letters' 0.99", text, score)
	}
	// Marks come only from the classes the decoding may read.
	l, probs, C = markLine("mean", []int{x, x, x, x, 0, 0, 0}, at4(".", 0.3))
	l.rect(34, 37, 37, 40)
	dict := strings.Split(testGlyphDict, "")
	allow := CharsetClasses(dict, strings.Split("mean", ""))
	if chars := lostMarks(slices.Clone(l.chars), probs, 7, C, dict, allow, inkOf(l.lum, l.w, recHeight)); len(chars) != 4 {
		t.Errorf("a charset without marks read %d characters, want 4", len(chars))
	}
}

// TestInkOnBenchPages reads ocr-peer bench pages that the line's ink
// mends, in Go Regular: a final full stop the recognizer let the blank
// take, at 16 px saved as JPEG at quality 25, and blurred then saved at
// 40 (lostMarks); a date's colon before a word gap, at 24 px blurred then
// saved at 40 (markSpaces).
func TestInkOnBenchPages(t *testing.T) {
	_, _, dict := realModels(t)
	det, rec := fastDet(t), latinRec(t)
	p := DefaultParams()
	p.Allow = LatinClasses(dict)
	blur := pages.Chain(pages.Blur, pages.JPEG(40))
	for _, tc := range []struct {
		name  string
		lines []string
		size  float64
		scan  pages.Scan
		want  string
	}{
		{"a final full stop, JPEG 25", pages.Lines[1], 16, pages.JPEG(25), "paid in full."},
		{"a final full stop, blurred", pages.Lines[1], 16, blur, "paid in full."},
		{"a space after a date's colon, blurred", pages.NoisyLines[1], 24, blur, "2025-01-31: 74.20"},
	} {
		img, err := tc.scan(renderPage(t, goregular.TTF, tc.size, tc.lines))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Recognize(img, det, rec, dict, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.ReplaceAll(res.Text, "\n", " "); !strings.Contains(got, tc.want) {
			t.Errorf("%s: read %q, want %q in it", tc.name, got, tc.want)
		}
	}
}

// spacedGlyph is a character of a line for markSpaces: read at a step
// (8 columns a step), its ink centred on the step's centre, 2*hw+1
// columns wide, over the rows given (a letter's: 21 to 40).
type spacedGlyph struct {
	s    string
	step int
	hw   int
	rows [][2]int
}

func readSpaced(glyphs []spacedGlyph, T int, more func(glyphLine)) string {
	w := 8 * T
	l := glyphLine{lum: make([]float32, w*recHeight), w: w}
	for i := range l.lum {
		l.lum[i] = 230
	}
	if more != nil {
		more(l)
	}
	dict := strings.Split(testGlyphDict, "")
	var chars []ctcChar
	for _, g := range glyphs {
		rows := g.rows
		if rows == nil {
			rows = [][2]int{{21, 40}}
		}
		for _, r := range rows {
			l.rect(8*g.step+4-g.hw, 8*g.step+4+g.hw, r[0], r[1])
		}
		class := len(dict) + 1
		if g.s != " " {
			class = slices.Index(dict, g.s) + 1
		}
		chars = append(chars, ctcChar{class: class, first: g.step, last: g.step})
	}
	out := markSpaces(chars, dict, len(dict)+1, inkOf(l.lum, l.w, recHeight), T)
	return glyphText(out, dict)
}

func TestMarkSpaces(t *testing.T) {
	colon := [][2]int{{26, 28}, {38, 40}}
	dot := [][2]int{{38, 40}}
	// Glyphs 20 high: the gap after a mark must be 5 columns wider than
	// the gap before it. Letters are 7 columns wide (hw 3) unless said.
	for _, tc := range []struct {
		name   string
		glyphs []spacedGlyph
		want   string
	}{
		{"a colon tight on a digit, apart from the next", []spacedGlyph{
			{"3", 0, 3, nil}, {"1", 1, 2, nil}, {":", 2, 1, colon}, {"7", 4, 3, nil}, {"4", 5, 3, nil}}, "31: 74"},
		{"a time's colon", []spacedGlyph{
			{"1", 0, 3, nil}, {":", 1, 1, colon}, {"3", 2, 3, nil}, {"0", 3, 3, nil}}, "1:30"},
		{"a decimal point", []spacedGlyph{
			{"1", 0, 3, nil}, {".", 1, 1, dot}, {"0", 2, 3, nil}}, "1.0"},
		{"a full stop after a word", []spacedGlyph{
			{"n", 0, 3, nil}, {"o", 1, 2, nil}, {".", 2, 1, dot}, {"7", 4, 3, nil}}, "no. 7"},
		{"a gap after 4 columns wider than before", []spacedGlyph{
			{"n", 0, 3, nil}, {"o", 1, 3, nil}, {".", 2, 1, dot}, {"7", 4, 7, nil}}, "no.7"},
		{"a gap after 5 columns wider than before", []spacedGlyph{
			{"n", 0, 3, nil}, {"o", 1, 3, nil}, {".", 2, 1, dot}, {"7", 4, 6, nil}}, "no. 7"},
		{"a space read already", []spacedGlyph{
			{"n", 0, 3, nil}, {"o", 1, 2, nil}, {".", 2, 1, dot}, {" ", 3, 0, [][2]int{}}, {"7", 4, 3, nil}}, "no. 7"},
		{"a time's colon 6 columns wider after (a third of 20 needed)", []spacedGlyph{
			{"3", 0, 3, nil}, {"1", 1, 2, nil}, {":", 2, 1, colon}, {"7", 4, 4, nil}, {"4", 5, 3, nil}}, "31:74"},
		{"an ellipsis's inner dots", []spacedGlyph{
			{"n", 0, 3, nil}, {"o", 1, 3, nil}, {".", 2, 1, dot}, {".", 3, 1, dot}, {"7", 5, 3, nil}}, "no.. 7"},
		{"before a closing bracket", []spacedGlyph{
			{"n", 0, 3, nil}, {"o", 1, 3, nil}, {".", 2, 1, dot}, {")", 4, 3, nil}}, "no.)"},
		{"before a quote that opens a word", []spacedGlyph{
			{"a", 0, 3, nil}, {":", 1, 1, colon}, {"\"", 3, 1, [][2]int{{21, 25}}}, {"n", 4, 3, nil}}, "a: \"n"},
		{"initials", []spacedGlyph{
			{"B", 0, 3, nil}, {".", 1, 1, dot}, {"D", 3, 3, nil}, {".", 4, 1, dot}}, "B.D."},
		{"before a straight quote that closes", []spacedGlyph{
			{"\"", 0, 1, [][2]int{{21, 25}}}, {"n", 1, 3, nil}, {"o", 2, 3, nil}, {",", 3, 1, dot}, {"\"", 5, 1, [][2]int{{21, 25}}}, {"m", 6, 3, nil}}, "\"no,\"m"},
		{"not a mark", []spacedGlyph{
			{"n", 0, 3, nil}, {"o", 1, 2, nil}, {"-", 2, 1, [][2]int{{30, 32}}}, {"7", 4, 3, nil}}, "no-7"},
	} {
		if got := readSpaced(tc.glyphs, 8, nil); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// Two zeros run together into one component, which goes to the
	// second: what is left nearest the first is a speck, and the gap it
	// leaves after the colon is not measured.
	run := func(l glyphLine) {
		l.rect(31, 32, 38, 40)
		l.rect(35, 47, 21, 40)
	}
	if got := readSpaced([]spacedGlyph{{"a", 1, 3, nil}, {":", 2, 1, colon}, {"0", 4, 0, [][2]int{}}, {"0", 5, 0, [][2]int{}}}, 6, run); got != "a:00" {
		t.Errorf("a speck left of glyphs run together: %q, want %q", got, "a:00")
	}
	// A digit's top broken off beside a colon, nearer the colon's centre
	// than its own, is not the colon's: the gap before the colon is not
	// made negative by it.
	hook := func(l glyphLine) {
		l.rect(8, 10, 8, 12)
		l.rect(21, 27, 21, 40)
	}
	if got := readSpaced([]spacedGlyph{{"1", 0, 3, nil}, {":", 1, 1, colon}, {"9", 3, 0, [][2]int{}}}, 6, hook); got != "1:9" {
		t.Errorf("a hook beside a colon: %q, want %q", got, "1:9")
	}
}
