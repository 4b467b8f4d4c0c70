package ocr

import (
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/pages"
)

// TestCERByTextSize measures the character error rate of whole pages
// against the size of small type on them (every crop reaches the
// recognizer 48 px high, so small type is upscaled on the way), clean and
// as a JPEG at quality 40, over both Go fonts and every line set; larger
// type is TestRecognizeLineCERBySize's. It holds 12 px and up (8 pt at
// 150 dpi is about 17 px) within 3 %; smaller type is measured, not held.
func TestCERByTextSize(t *testing.T) {
	det, rec, dict := realModels(t)
	p := DefaultParams()
	p.Allow = LatinClasses(dict)
	sets := [][]string{}
	sets = append(sets, pages.Lines...)
	sets = append(sets, pages.NoisyLines...)
	t.Logf("%6s %8s %8s %6s", "px", "clean", "jpeg40", "chars")
	for _, size := range []float64{9, 10, 11, 12, 14} {
		var edits [2]int
		chars := 0
		for _, ttf := range [][]byte{goregular.TTF, gomono.TTF} {
			for _, want := range sets {
				img := renderPage(t, ttf, size, want)
				for k, scan := range []pages.Scan{pages.Plain, pages.JPEG(40)} {
					page, err := scan(img)
					if err != nil {
						t.Fatal(err)
					}
					r, err := Recognize(page, det, rec, dict, p)
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, l := range r.Lines {
						got = append(got, l.Text)
					}
					truth := strings.Join(want, " ")
					edits[k] += levenshtein(strings.Join(got, " "), truth)
					if k == 0 {
						chars += len([]rune(truth))
					}
				}
			}
		}
		cer := func(k int) float64 { return 100 * float64(edits[k]) / float64(chars) }
		t.Logf("%6.0f %7.2f%% %7.2f%% %6d", size, cer(0), cer(1), chars)
		if size >= 12 && (cer(0) > 3 || cer(1) > 3) {
			t.Errorf("%.0f px: CER %.2f%% clean, %.2f%% JPEG; want at most 3%%", size, cer(0), cer(1))
		}
	}
}
