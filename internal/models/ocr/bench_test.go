package ocr

import (
	"testing"

	"golang.org/x/image/font/gofont/goregular"
)

// BenchmarkRecognizePage measures one rendered page (goregular 28 px, four
// lines) through detection and recognition on the real models.
func BenchmarkRecognizePage(b *testing.B) {
	det, rec, dict := realModels(b)
	img := renderPage(b, goregular.TTF, 28, pageLines[0])
	b.ResetTimer()
	for b.Loop() {
		if _, err := Recognize(img, det, rec, dict, DefaultParams()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDetect measures the detection half alone on the same page.
func BenchmarkDetect(b *testing.B) {
	det, _, _ := realModels(b)
	img := renderPage(b, goregular.TTF, 28, pageLines[0])
	b.ResetTimer()
	for b.Loop() {
		in, h, w := DetInput(img, 960)
		outs, err := det.Run(detTensor(in, h, w))
		if err != nil {
			b.Fatal(err)
		}
		Boxes(outs[0].Float32, h, w, img.Bounds().Dx(), img.Bounds().Dy(), DefaultParams())
	}
}
