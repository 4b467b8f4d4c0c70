package documents

import (
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

// ReadPage reads one page: its text layer as it is, or its image through
// ocr (a page too small to hold text reads as empty, without a model).
func ReadPage(p Page, ocr OCRFunc) (PageResult, error) {
	pr := PageResult{Page: p.Number, Source: p.Source, Text: p.Text}
	if p.Source != SourceOCR {
		return pr, nil
	}
	if b := p.Image.Bounds(); b.Dx() >= MinSide && b.Dy() >= MinSide {
		var err error
		if pr.Text, pr.Lines, err = ocr(p); err != nil {
			return pr, err
		}
	}
	if pr.Lines == nil {
		pr.Lines = json.RawMessage("[]")
	}
	return pr, nil
}

// Assemble makes a document's result of its pages' results, in page
// order.
func Assemble(pages []PageResult) *Result {
	texts := make([]string, len(pages))
	for i, pr := range pages {
		texts[i] = pr.Text
	}
	return &Result{Pages: len(pages), Text: strings.Join(texts, "\f"), PageResults: pages}
}
