package documents

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/pages"
)

// one Opener for the package's tests: pdfium's module compiles once.
var opener = NewOpener(Limits{MaxPages: 8})

func page(t *testing.T, lines []string) image.Image {
	t.Helper()
	img, err := pages.Render(pages.Regular, 28, lines)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func codeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestMixedPDFTextLayerAndScan(t *testing.T) {
	ctx := context.Background()
	text := []string{"Invoice 2041 total 318.50 EUR", "Ship to: 42 Elm Street (rear)"}
	data := pages.PDF([]pages.PDFPage{{Text: text}, {Image: page(t, pages.Lines[1])}})
	if Sniff(data) != PDF {
		t.Fatal("a PDF not sniffed as one")
	}
	d, err := opener.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Pages() != 2 {
		t.Fatalf("pages %d, want 2", d.Pages())
	}
	p1, err := d.Page(ctx, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Source != SourceText || p1.Text != strings.Join(text, "\n") || p1.Image != nil {
		t.Fatalf("page 1: source %q text %q", p1.Source, p1.Text)
	}
	p2, err := d.Page(ctx, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Source != SourceOCR || p2.Image == nil {
		t.Fatalf("page 2: source %q, no image", p2.Source)
	}
	if w := p2.Image.Bounds().Dx(); w < 595*DefaultDPI/72 || w > 595*DefaultDPI/72+1 {
		t.Fatalf("page 2 rendered %d pixels wide, want an A4 page at %d dpi", w, DefaultDPI)
	}
	forced, err := d.Page(ctx, 1, true)
	if err != nil || forced.Source != SourceOCR || forced.Image == nil {
		t.Fatalf("forced OCR of a text page: %+v, %v", forced.Source, err)
	}
}

// TestRenderOddWidth: pdfium pads each row of pixels; a page whose width
// is not a multiple of 4 must come back with every row whole.
func TestRenderOddWidth(t *testing.T) {
	ctx := context.Background()
	img := image.NewGray(image.Rect(0, 0, 100, 100))
	for i := range img.Pix {
		img.Pix[i] = uint8(i % 251)
	}
	data := pages.PDF([]pages.PDFPage{{Image: img, DPI: 72, WPt: 595, HPt: 842}})
	o := NewOpener(Limits{DPI: 72})
	d, err := o.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := d.Page(ctx, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	g := p.Image.(*image.Gray)
	if g.Rect.Dx() != 595 || g.Stride != 595 || len(g.Pix) != 595*g.Rect.Dy() {
		t.Fatalf("rendered %v stride %d with %d pixels", g.Rect, g.Stride, len(g.Pix))
	}
	// The image sits at the top left: its pixels come back as drawn.
	for y := 10; y < 90; y += 17 {
		for x := 10; x < 90; x += 13 {
			if got, want := int(g.GrayAt(x, y).Y), int(img.GrayAt(x, y).Y); got-want > 2 || want-got > 2 {
				t.Fatalf("pixel (%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
}

func TestTIFFPages(t *testing.T) {
	data := pages.TIFF([]image.Image{page(t, pages.Lines[0]), page(t, pages.Lines[1][:2]), page(t, []string{"x"})})
	if Sniff(data) != TIFF {
		t.Fatal("a TIFF not sniffed as one")
	}
	d, err := opener.Open(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pages() != 3 {
		t.Fatalf("pages %d, want 3", d.Pages())
	}
	var heights []int
	for n := 1; n <= 3; n++ {
		p, err := d.Page(context.Background(), n, false)
		if err != nil {
			t.Fatal(err)
		}
		heights = append(heights, p.Image.Bounds().Dy())
	}
	if !(heights[0] > heights[1] && heights[1] > heights[2]) {
		t.Fatalf("pages decoded out of order or the same page thrice: heights %v", heights)
	}
}

func TestHostileDocuments(t *testing.T) {
	ctx := context.Background()
	text := pages.PDFPage{Text: []string{"x"}}
	many := make([]pages.PDFPage, 9)
	for i := range many {
		many[i] = text
	}
	manyTIFF := make([]image.Image, 9)
	for i := range manyTIFF {
		manyTIFF[i] = image.NewGray(image.Rect(0, 0, 2, 2))
	}
	good := pages.PDF([]pages.PDFPage{text})
	loop := pages.TIFF([]image.Image{image.NewGray(image.Rect(0, 0, 2, 2))})
	copy(loop[len(loop)-4:], loop[4:8]) // the IFD's next points back at itself
	for _, c := range []struct {
		name string
		data []byte
		code string
		page int // 0: fails at Open
	}{
		{"too many PDF pages", pages.PDF(many), CodeTooManyPages, 0},
		{"too many TIFF pages", pages.TIFF(manyTIFF), CodeTooManyPages, 0},
		{"encrypted", encrypted(good), CodeEncrypted, 0},
		{"corrupt", []byte("%PDF-1.4\n\x00\x01garbage, no objects, no xref"), CodeUndecodable, 0},
		{"truncated TIFF", []byte("II*\x00\x00\x01\x00\x00"), CodeUndecodable, 0},
		{"TIFF IFD loop", loop, CodeUndecodable, 0},
		{"huge page box", pages.PDF([]pages.PDFPage{{Image: image.NewGray(image.Rect(0, 0, 8, 8)), WPt: 14400, HPt: 14400}}), CodePageTooLarge, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := opener.Open(ctx, c.data)
			if c.page > 0 && err == nil {
				defer d.Close()
				_, err = d.Page(ctx, c.page, false)
			} else if err == nil {
				d.Close()
			}
			if codeOf(err) != c.code {
				t.Fatalf("error %v, want code %s", err, c.code)
			}
		})
	}
	// The engine still serves after all of that.
	d, err := opener.Open(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

// encrypted adds a standard-security /Encrypt dictionary whose user
// password is not empty, as a password-protected PDF has.
func encrypted(pdf []byte) []byte {
	s := string(pdf)
	enc := "999 0 obj\n<< /Filter /Standard /V 1 /R 2 /P -4 /O <" + strings.Repeat("7a", 32) + "> /U <" + strings.Repeat("3c", 32) + "> >>\nendobj\n"
	i := strings.Index(s, "xref\n")
	s = s[:i] + enc + s[i:]
	s = strings.Replace(s, "trailer\n<<", "trailer\n<< /Encrypt 999 0 R /ID [<"+strings.Repeat("11", 16)+"> <"+strings.Repeat("11", 16)+">]", 1)
	return []byte(s)
}

// TestRenderCaps: a render past its time is killed, one past the wasm
// memory cap traps; each fails with its code, and the opener goes on
// serving the next document.
func TestRenderCaps(t *testing.T) {
	ctx := context.Background()
	scan := pages.PDF([]pages.PDFPage{{Image: image.NewGray(image.Rect(0, 0, 64, 64))}})
	for _, c := range []struct {
		name string
		lim  Limits
		code string
	}{
		{"time", Limits{RenderTimeout: time.Nanosecond}, CodeRenderTimeout},
		// A 14400-point page at 300 dpi within 2^28 pixels is a 256 MB
		// grayscale bitmap: more than the 128 MiB the sandbox may hold.
		{"memory", Limits{MemoryBytes: 128 << 20, DPI: 300, MaxPixels: 1 << 28}, CodeRenderMemory},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := NewOpener(c.lim)
			defer o.Close()
			data := scan
			if c.name == "memory" {
				data = pages.PDF([]pages.PDFPage{{Image: image.NewGray(image.Rect(0, 0, 8, 8)), WPt: 14400, HPt: 3400}})
			}
			d, err := o.Open(ctx, data)
			if err == nil {
				_, err = d.Page(ctx, 1, false)
				d.Close()
			}
			if codeOf(err) != c.code {
				t.Fatalf("error %v, want code %s", err, c.code)
			}
			o.lim = Limits{}.WithDefaults()
			o.pdf.lim = o.lim
			d, err = o.Open(ctx, scan)
			if err != nil {
				t.Fatalf("the next document: %v", err)
			}
			if _, err := d.Page(ctx, 1, false); err != nil {
				t.Fatalf("the next document's page: %v", err)
			}
			d.Close()
		})
	}
}

// TestThousandsOfTinyPages: 2,000 one-point pages within the page cap read
// as empty pages without any page reaching the recognizer; past the cap
// the document is refused before a page is rendered.
func TestThousandsOfTinyPages(t *testing.T) {
	ctx := context.Background()
	tiny := make([]pages.PDFPage, 2000)
	for i := range tiny {
		tiny[i] = pages.PDFPage{Image: image.NewGray(image.Rect(0, 0, 1, 1)), WPt: 1, HPt: 1}
	}
	data := pages.PDF(tiny)
	if _, err := opener.Open(ctx, data); codeOf(err) != CodeTooManyPages {
		t.Fatalf("2,000 pages past a cap of 8: %v, want %s", err, CodeTooManyPages)
	}
	o := NewOpener(Limits{MaxPages: 2000})
	defer o.Close()
	d, err := o.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	calls := 0
	prs := make([]PageResult, 0, d.Pages())
	for n := 1; n <= d.Pages(); n++ {
		p, err := d.Page(ctx, n, false)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := ReadPage(p, func(Page) (string, json.RawMessage, error) {
			calls++
			return "", nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		prs = append(prs, pr)
	}
	res := Assemble(prs)
	if res.Pages != 2000 || len(res.PageResults) != 2000 || calls != 0 {
		t.Fatalf("pages %d, page results %d, recognizer calls %d", res.Pages, len(res.PageResults), calls)
	}
	if res.Text != strings.Repeat("\f", 1999) {
		t.Fatalf("text of 2,000 empty pages: %q...", res.Text[:min(len(res.Text), 20)])
	}
}

func TestMain(m *testing.M) {
	// pdfium's compiled code goes to this run's own cache directory, not
	// the user's.
	dir, err := os.MkdirTemp("", "inferq-documents-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestWarmKeepsCompiledCode: Warm readies pdfium before any PDF is read
// and leaves its compiled code in the user's cache directory, where the
// next process on the host loads it instead of compiling it again.
func TestWarmKeepsCompiledCode(t *testing.T) {
	o := NewOpener(Limits{})
	defer o.Close()
	if err := o.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	var compiledBytes int64
	err := filepath.WalkDir(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "inferq", "pdfium"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		compiledBytes += fi.Size()
		return err
	})
	if err != nil || compiledBytes < 1<<20 {
		t.Fatalf("cache directory holds %d bytes of compiled code (%v); pdfium's is megabytes", compiledBytes, err)
	}
	d, err := o.Open(context.Background(), pages.PDF([]pages.PDFPage{{Image: page(t, []string{"warm"})}}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Pages() != 1 {
		t.Fatalf("%d pages", d.Pages())
	}
}
