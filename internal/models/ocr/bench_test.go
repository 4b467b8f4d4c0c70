package ocr

import (
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/pages"
)

// BenchmarkRecognizePage measures one rendered page (goregular 28 px, four
// lines) through detection and recognition on the real models, decoding
// Latin text as the fleet does: with the models as PaddleOCR ships them
// (full) and with the ones the zoo makes of them (latin: LatinRecognizer
// and FastDetector).
func BenchmarkRecognizePage(b *testing.B) {
	det, rec, dict := realModels(b)
	img := renderPage(b, goregular.TTF, 28, pageLines[0])
	p := DefaultParams()
	p.Allow = LatinClasses(dict)
	for _, r := range []struct {
		name string
		rec  Runner
		det  Runner
	}{{"full", rec, det}, {"latin", latinRec(b), fastDet(b)}} {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Recognize(img, r.det, r.rec, dict, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDetect measures the detection half alone on the same page,
// with PaddleOCR's detector (full) and the zoo's (fast, FastDetector).
func BenchmarkDetect(b *testing.B) {
	real, _, _ := realModels(b)
	img := renderPage(b, goregular.TTF, 28, pageLines[0])
	for _, d := range []struct {
		name string
		det  Runner
	}{{"full", real}, {"fast", fastDet(b)}} {
		b.Run(d.name, func(b *testing.B) {
			for b.Loop() {
				in, h, w := DetInput(img, 960)
				outs, err := d.det.Run(detTensor(in, h, w))
				if err != nil {
					b.Fatal(err)
				}
				Boxes(outs[0].Float32, h, w, img.Bounds().Dx(), img.Bounds().Dy(), DefaultParams())
			}
		})
	}
}

// BenchmarkRecognizer measures the recognition half alone (line crops,
// recognizer runs, decoding) per page, on the six pages of the noisy sets'
// sizes and fonts saved as JPEG at quality 30: through the full
// multilingual head (full), through the head pruned to the Latin classes
// (pruned), and through the recognizer the zoo ships (latin:
// LatinRecognizer, pruned and folded). Detection runs once, before the
// timer.
func BenchmarkRecognizer(b *testing.B) {
	det, rec, dict := realModels(b)
	type page struct {
		src   *rgbImage
		quads []Quad
	}
	var ps []page
	for _, ttf := range [][]byte{goregular.TTF, gomono.TTF} {
		for si, size := range []float64{14, 18, 24} {
			img, err := pages.JPEG(30)(renderPage(b, ttf, size, pages.NoisyLines[si%len(pages.NoisyLines)]))
			if err != nil {
				b.Fatal(err)
			}
			src, err := toRGB(img)
			if err != nil {
				b.Fatal(err)
			}
			in, h, w := detInputRGB(src, DefaultParams().MaxSide)
			outs, err := det.Run(detTensor(in, h, w))
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, page{src, Boxes(outs[0].Float32[:h*w], h, w, src.w, src.h, DefaultParams())})
		}
	}
	p := DefaultParams()
	p.Allow = LatinClasses(dict)
	for _, r := range []struct {
		name string
		rec  Runner
	}{{"full", rec}, {"pruned", prunedRec(b)}, {"latin", latinRec(b)}} {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				for _, pg := range ps {
					if _, err := recognizeQuads(pg.src, pg.quads, r.rec, dict, p); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*len(ps)), "ms/page")
		})
	}
}
