package documents

import (
	"context"
	"image"
	"testing"

	"github.com/inferq/inferq/internal/pages"
	"github.com/klippa-app/go-pdfium/enums"
	"github.com/klippa-app/go-pdfium/requests"
)

// scanOf is a w x h gray page of varied pixels, a stand-in for a scan.
func scanOf(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g.Pix[y*w+x] = uint8((x/7 + y/5) * 37 % 256)
		}
	}
	return g
}

// fastPath asks the scanned-page path alone for page 1 of data.
func fastPath(t *testing.T, data []byte) (*image.Gray, bool) {
	t.Helper()
	ctx := context.Background()
	d, err := opener.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pd := d.(*pdfDoc)
	var g *image.Gray
	var ok bool
	err = pd.guard(ctx, 1, func() error {
		ref := requests.Page{ByIndex: &requests.PageByIndex{Document: pd.doc, Index: 0}}
		size, err := pd.inst.FPDF_GetPageSizeByIndex(&requests.FPDF_GetPageSizeByIndex{Document: pd.doc, Index: 0})
		if err != nil {
			return err
		}
		dpi, err := pd.dpiFor(1, size.Width, size.Height)
		if err != nil {
			return err
		}
		g, ok, err = pd.scannedImage(ref, dpi, size.Width, size.Height)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, ok
}

// A4 at 150 dpi, as the bench's pages are.
const a4W, a4H = 1240, 1754

func TestScannedPageFastPath(t *testing.T) {
	src := scanOf(a4W, a4H)
	data := pages.PDF([]pages.PDFPage{{Image: src, DPI: 150, WPt: a4W * 72 / 150.0, HPt: a4H * 72 / 150.0}})
	g, ok := fastPath(t, data)
	if !ok {
		t.Fatal("a one-image scanned page did not take the fast path")
	}
	if g.Rect != src.Rect || string(g.Pix) != string(src.Pix) {
		t.Fatalf("fast path gave %v, not the embedded %v pixels", g.Rect, src.Rect)
	}
	// Page serves the same pixels, and they match pdfium's own rendering.
	d, err := opener.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := d.Page(context.Background(), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if pg := p.Image.(*image.Gray); p.Source != SourceOCR || string(pg.Pix) != string(src.Pix) {
		t.Fatal("Page did not serve the fast path's pixels")
	}
}

func TestScannedPageFastPathJPEGAndDownscale(t *testing.T) {
	src := scanOf(a4W, a4H)
	g, ok := fastPath(t, pages.PDF([]pages.PDFPage{{Image: src, DPI: 150, WPt: a4W * 72 / 150.0, HPt: a4H * 72 / 150.0, JPEG: true}}))
	if !ok || g.Rect != src.Rect {
		t.Fatalf("JPEG page: fast path %v, %v", ok, g)
	}
	var diff int
	for i := range g.Pix {
		diff += max(int(g.Pix[i])-int(src.Pix[i]), int(src.Pix[i])-int(g.Pix[i]))
	}
	if mean := float64(diff) / float64(len(g.Pix)); mean > 6 {
		t.Fatalf("JPEG page differs from its source by %.1f levels a pixel", mean)
	}
	// A 300 dpi scan comes back at the 150 dpi the recognizer reads.
	big := scanOf(2*a4W, 2*a4H)
	g, ok = fastPath(t, pages.PDF([]pages.PDFPage{{Image: big, DPI: 300, WPt: a4W * 72 / 150.0, HPt: a4H * 72 / 150.0}}))
	if !ok || g.Rect.Dx() != a4W || g.Rect.Dy() != a4H {
		t.Fatalf("300 dpi page: fast path %v, size %v, want %dx%d", ok, g.Rect, a4W, a4H)
	}
	want := boxDown(big, a4W, a4H)
	if string(g.Pix) != string(want.Pix) {
		t.Fatal("300 dpi page not box-averaged to 150 dpi")
	}
}

func TestScannedPageFallsBack(t *testing.T) {
	src := scanOf(a4W, a4H)
	page := pages.PDFPage{Image: src, DPI: 150, WPt: a4W * 72 / 150.0, HPt: a4H * 72 / 150.0}
	twoObjects := page
	twoObjects.Extra = "0 0 m 100 100 l S"
	small := page
	small.Image = scanOf(a4W/2, a4H)
	coarse := page
	coarse.Image, coarse.DPI = scanOf(a4W/2, a4H/2), 75
	for name, p := range map[string]pages.PDFPage{"two objects": twoObjects, "image covers half the page": small, "75 dpi scan": coarse} {
		t.Run(name, func(t *testing.T) {
			data := pages.PDF([]pages.PDFPage{p})
			if _, ok := fastPath(t, data); ok {
				t.Fatal("took the fast path")
			}
			// The renderer still reads the page.
			d, err := opener.Open(context.Background(), data)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			pg, err := d.Page(context.Background(), 1, false)
			if err != nil || pg.Source != SourceOCR || pg.Image.Bounds().Dx() < a4W || pg.Image.Bounds().Dx() > a4W+1 {
				t.Fatalf("rendered page: %v, %v", pg.Image.Bounds(), err)
			}
		})
	}
}

// BenchmarkScannedPage: one bench-sized scanned A4 page (150 dpi, Flate)
// through Page, the fast path, against pdfium rasterizing the same page.
func BenchmarkScannedPage(b *testing.B) {
	ctx := context.Background()
	data := pages.PDF([]pages.PDFPage{{Image: scanOf(a4W, a4H), DPI: 150, WPt: a4W * 72 / 150.0, HPt: a4H * 72 / 150.0}})
	d, err := opener.Open(ctx, data)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	pd := d.(*pdfDoc)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.Page(ctx, 1, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("render", func(b *testing.B) {
		ref := requests.Page{ByIndex: &requests.PageByIndex{Document: pd.doc, Index: 0}}
		for b.Loop() {
			r, err := pd.inst.RenderPageInDPI(&requests.RenderPageInDPI{Page: ref, DPI: 150, ImageFormat: requests.RenderImageFormatGrayscale, RenderFlags: enums.FPDF_RENDER_FLAG_RENDER_NO_SMOOTHIMAGE})
			if err != nil {
				b.Fatal(err)
			}
			r.Cleanup()
		}
	})
}
