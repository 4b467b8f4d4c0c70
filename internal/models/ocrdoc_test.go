package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
