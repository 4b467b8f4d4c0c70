package documents

import (
	"context"
	"encoding/json"
	"strings"
)

// PageResult is one page's reading: Lines are the OCR lines (each with
// its text, score and box in the rendered page's pixels) and are absent
// for a page read from its text layer.
type PageResult struct {
	Page   int             `json:"page"`
	Source string          `json:"source"`
	Text   string          `json:"text"`
	Lines  json.RawMessage `json:"lines,omitempty"`
}

// Result is a document's result: every page in order, and their texts
// joined with a form feed between pages.
type Result struct {
	Pages       int          `json:"pages"`
	Text        string       `json:"text"`
	PageResults []PageResult `json:"page_results"`
}

// OCRFunc reads one rendered page: its text and its lines as JSON.
type OCRFunc func(p Page) (text string, lines json.RawMessage, err error)

// MinSide is the smallest page side, in pixels, worth showing to the
// recognizer: a smaller page (a PDF of thousands of 1-point pages) reads
// as empty without running a model on it.
const MinSide = 8

// Read reads every page of d in order, text layer first unless forceOCR,
// through ocr for the rest, and assembles the result; progress, when set,
// hears each page read, and its false stops the reading (CodeStopped).
// The first page that fails fails the document, with that page named in
// the *Error.
func Read(ctx context.Context, d Document, forceOCR bool, progress func(done, total int) bool, ocr OCRFunc) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The next page renders while this one is read: rendering (pdfium)
	// and recognition (ONNX Runtime) overlap, with at most two pages'
	// pixels held. The renderer goroutine is the document's only user
	// until it has sent its last page or ctx ends; Read waits for it.
	type rendered struct {
		p   Page
		err error
	}
	pagesCh := make(chan rendered, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(pagesCh)
		for n := 1; n <= d.Pages(); n++ {
			p, err := d.Page(ctx, n, forceOCR)
			select {
			case pagesCh <- rendered{p, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()

	res := &Result{Pages: d.Pages(), PageResults: make([]PageResult, 0, d.Pages())}
	texts := make([]string, 0, d.Pages())
	for n := 1; n <= d.Pages(); n++ {
		var r rendered
		select {
		case r = <-pagesCh:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			return nil, r.err
		}
		p := r.p
		pr := PageResult{Page: n, Source: p.Source, Text: p.Text}
		if p.Source == SourceOCR {
			if b := p.Image.Bounds(); b.Dx() >= MinSide && b.Dy() >= MinSide {
				var err error
				if pr.Text, pr.Lines, err = ocr(p); err != nil {
					return nil, err
				}
			}
			if pr.Lines == nil {
				pr.Lines = json.RawMessage("[]")
			}
		}
		res.PageResults = append(res.PageResults, pr)
		texts = append(texts, pr.Text)
		if progress != nil && !progress(n, d.Pages()) && n < d.Pages() {
			return nil, errorf(CodeStopped, 0, "stopped after page %d: the job ended while its pages were read", n)
		}
	}
	res.Text = strings.Join(texts, "\f")
	return res, nil
}
