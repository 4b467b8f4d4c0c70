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

const testGlyphDict = "aemnrBDKLxXoO01sSwW.-"

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

func (l glyphLine) readAllowing(allow []bool) string {
	dict := strings.Split(testGlyphDict, "")
	chars := slices.Clone(l.chars)
	caseByHeight(chars, dict, allow, inkOf(l.lum, l.w, recHeight), len(chars))
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

// TestCaseByHeightOnPages decodes the recognizer's readings of the bench's
// passages, set small (14 and 17 px, as on an A4 page at 150 dpi) in both
// Go fonts and saved as JPEG at quality 40, with the lines' ink and
// without, FixCase after both, as the pipeline does: the glyphs' heights
// must mend more characters than they spoil, on every page at worst
// leaving it as it was.
func TestCaseByHeightOnPages(t *testing.T) {
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
					t.Errorf("%v px: %q read %q by height, %q without", size, want, strings.Join(a, " "), strings.Join(b, " "))
				}
			}
		}
	}
	t.Logf("characters wrong: %d with the glyphs' heights, %d without", with, without)
	if with >= without {
		t.Errorf("the glyphs' heights mended nothing: %d characters wrong, %d without", with, without)
	}
}
