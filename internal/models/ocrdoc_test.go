package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/pages"
)

// TestDocumentDPI measures the character error rate of scanned pages
// (text at 8, 10 and 12 pt, scanned at 300 dpi) read at several render
// resolutions: the table behind documents.DefaultDPI. It holds the
// default to CER <= 2%.
func TestDocumentDPI(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ONNX Runtime and the OCR model; -short skips it")
	}
	m, release, err := builtins(t).Acquire("ocr")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	const scanDPI = 300
	var ps []pages.PDFPage
	var want [][]string
	for _, pt := range []float64{8, 10, 12} {
		for _, lines := range pages.Lines {
			img, err := pages.Render(pages.Regular, pt*scanDPI/72, lines)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, pages.PDFPage{Image: img, DPI: scanDPI})
			want = append(want, lines)
		}
	}
	data := pages.PDF(ps)
	var table strings.Builder
	table.WriteString("| DPI | CER | ms a page |\n|---|---|---|\n")
	for _, dpi := range []int{100, 150, 200} {
		o := documents.NewOpener(documents.Limits{DPI: dpi})
		d, err := o.Open(context.Background(), data)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var r []documents.PageResult
		for n := 1; n <= d.Pages(); n++ {
			p, err := d.Page(context.Background(), n, false)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Run([]Sample{&pageSample{p}})
			if err != nil || out[0].Err != nil {
				t.Fatalf("%d dpi: %v %v", dpi, err, out[0].Err)
			}
			var pr documents.PageResult
			if err := json.Unmarshal(out[0].Result, &pr); err != nil {
				t.Fatal(err)
			}
			r = append(r, pr)
		}
		perPage := time.Since(start) / time.Duration(len(ps))
		_ = d.Close()
		_ = o.Close()
		var edits, chars int
		for i, pr := range r {
			e, n := pages.Errors(strings.Split(pr.Text, "\n"), want[i])
			edits, chars = edits+e, chars+n
		}
		cer := float64(edits) / float64(chars)
		fmt.Fprintf(&table, "| %d | %.2f%% | %d |\n", dpi, 100*cer, perPage.Milliseconds())
		if dpi == documents.DefaultDPI && cer > 0.02 {
			t.Errorf("CER %.2f%% at the default %d dpi, want at most 2%%", 100*cer, dpi)
		}
	}
	t.Logf("scanned 8, 10 and 12 pt pages (%d), CER by render DPI:\n%s", len(ps), table.String())
}

// TestPagesOfOpenDocuments: pages read one after another, of two
// documents in turn and of one document twice at once, each come from
// their own document and page, whichever document is kept open between
// them (openDocs); a document whose page failed is not kept.
func TestPagesOfOpenDocuments(t *testing.T) {
	m, release, err := builtins(t).Acquire("ocr")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	doc := func(name string, n int) []byte {
		var ps []pages.PDFPage
		for i := 1; i <= n; i++ {
			ps = append(ps, pages.PDFPage{Text: []string{fmt.Sprintf("%s page %d", name, i)}})
		}
		return pages.PDF(ps)
	}
	a, b := doc("alpha", 3), doc("beta", 2)
	read := func(data []byte, n int) (string, error) {
		s, err := m.Prepare(Input{Data: data, ContentType: PageContentType("application/pdf", n)})
		if err != nil {
			return "", err
		}
		return s.(*pageSample).Text, nil
	}
	for _, step := range []struct {
		data []byte
		n    int
		want string
	}{{a, 1, "alpha page 1"}, {a, 2, "alpha page 2"}, {b, 1, "beta page 1"}, {a, 3, "alpha page 3"}, {b, 2, "beta page 2"}, {b, 1, "beta page 1"}} {
		if got, err := read(step.data, step.n); err != nil || got != step.want {
			t.Errorf("page %d: %q, %v; want %q", step.n, got, err, step.want)
		}
	}
	// Two pages of one document at once: one borrows the open copy, the
	// other opens its own.
	var wg sync.WaitGroup
	for n := 1; n <= 3; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := read(a, n); err != nil || got != fmt.Sprintf("alpha page %d", n) {
				t.Errorf("at once, page %d: %q, %v", n, got, err)
			}
		}()
	}
	wg.Wait()
	// A page past the end fails its job and the document is read on.
	if _, err := read(b, 5); err == nil {
		t.Error("page 5 of a 2-page document read")
	}
	if got, err := read(b, 2); err != nil || got != "beta page 2" {
		t.Errorf("after a failed page: %q, %v", got, err)
	}
}
