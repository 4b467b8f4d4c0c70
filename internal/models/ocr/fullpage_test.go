package ocr

import (
	"image"
	"slices"
	"strings"
	"testing"

	"github.com/inferq/inferq/internal/pages"
)

// a4Page sets lines of size px type on an A4 page at 150 dpi (pages.A4).
func a4Page(t testing.TB, size float64, lines []string) image.Image {
	t.Helper()
	return pages.A4(renderPage(t, pages.Regular, size, lines))
}

// TestRecognizeFullPages reads full A4 pages at 150 dpi (the resolution
// documents are rendered at) of small type saved as JPEG at quality 40,
// and holds CER at most 1.5%. Detected only at PaddleOCR's 960 px, and
// with lines squeezed to 25 heights, these pages read with 11.4% (14 px)
// and 7.1% (17 px) of their characters wrong (fineSide, recMaxRatio).
func TestRecognizeFullPages(t *testing.T) {
	_, _, dict := realModels(t)
	det, rec := fastDet(t), latinRec(t)
	p := DefaultParams()
	p.Allow = LatinClasses(dict)
	lines := pages.FullPage(slices.Concat(pages.Lines, pages.NoisyLines, pages.HeldOutLines), 0)
	want := strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
	for _, size := range []float64{14, 17} {
		img, err := pages.JPEG(40)(a4Page(t, size, lines))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Recognize(img, det, rec, dict, p)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(strings.Fields(r.Text), " ")
		cer := 100 * float64(levenshtein(got, want)) / float64(len([]rune(want)))
		t.Logf("%v px: %d lines, CER %.2f%%", size, len(r.Lines), cer)
		if len(r.Lines) != len(lines) || cer > 1.5 {
			t.Errorf("%v px: %d lines (want %d), CER %.2f%% (want at most 1.5%%): %q", size, len(r.Lines), len(lines), cer, got)
		}
	}
}

// TestFineSide: a page that MaxSide shrank is detected again at its own
// size (up to FineSide) only when its median line box is small.
func TestFineSide(t *testing.T) {
	box := func(h int) Quad { return Quad{{0, 0}, {600, 0}, {600, h}, {0, h}} }
	p := DefaultParams()
	small := []Quad{box(20), box(31), box(90)}
	large := []Quad{box(20), box(32), box(60)}
	for _, tc := range []struct {
		name  string
		quads []Quad
		w, h  int
		fine  int
		want  int
	}{
		{"A4 at 150 dpi, small type", small, 1240, 1754, 0, 1754},
		{"A4 at 300 dpi, small type: up to FineSide", small, 2480, 3508, 0, 2048},
		{"large type", large, 1240, 1754, 0, 0},
		{"a page MaxSide did not shrink", small, 900, 600, 0, 0},
		{"no text", nil, 1240, 1754, 0, 0},
		{"switched off", small, 1240, 1754, -1, 0},
	} {
		q := p
		if tc.fine != 0 {
			q.FineSide = tc.fine
		}
		if got := fineSide(tc.quads, tc.w, tc.h, q); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
