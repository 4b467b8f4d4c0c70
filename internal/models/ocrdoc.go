package models

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"strconv"
	"sync"

	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/ocr"
	"github.com/inferq/inferq/internal/ort"
)

// docLimits are the process's document limits, set once by
// SetDocumentLimits before the first document is read.
var docLimits documents.Limits

// SetDocumentLimits sets the page cap and render resolution every
// document of this process is read with (the worker's INFERQ_MAX_PAGES
// and INFERQ_DOCUMENT_DPI); zero fields keep the defaults. Call it before
// serving.
func SetDocumentLimits(l documents.Limits) { docLimits = l }

// docOpener is the process's one document opener: pdfium's wasm module
// compiles once, on the first PDF, whichever model version reads it.
var docOpener = sync.OnceValue(func() *documents.Opener {
	return documents.NewOpener(docLimits.WithDefaults())
})

// readsDocuments says whether a model reads PDFs and TIFFs page by page
// (the OCR pipeline).
func readsDocuments(man *catalog.Manifest) bool { return man.Preprocess.Kind == "ocr" }

// ErrNotDocument is an input that is not a whole document to fan out: an
// image, a page job, or a model that reads no documents.
var ErrNotDocument = errors.New("not a whole document")

// Document parameters of a job's content type: "ocr=force" reads every
// page through OCR, text layer or not; "page=n" makes the job page n of
// its document (the page jobs a document fans out into).
const (
	paramOCR  = "ocr"
	paramPage = "page"
)

// DocumentPages opens a whole document sent to a model that reads
// documents and counts its pages, without rendering any: a document that
// can never be read (encrypted, corrupt, over the page cap) is an
// *InputError with its code. Anything else is ErrNotDocument.
func (m *Model) DocumentPages(in Input) (int, error) {
	if _, ok := m.pipe.(*ocrPipeline); !ok || documents.Sniff(in.Data) == documents.NotDocument || pageOf(in.ContentType) > 0 {
		return 0, ErrNotDocument
	}
	d, err := openDocs.take(context.Background(), in.Data)
	if err != nil {
		return 0, documentError(err)
	}
	n := d.Pages()
	openDocs.give(in.Data, d, true) // (lent no more: not read after this)
	return n, nil
}

// PageContentType is the content type of page n of a document sent as
// contentType: the document's, with the page named.
func PageContentType(contentType string, n int) string {
	base, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		base, params = "application/octet-stream", nil
	}
	if params == nil {
		params = map[string]string{}
	}
	params[paramPage] = strconv.Itoa(n)
	return mime.FormatMediaType(base, params)
}

// pageOf is the page a content type names (0: none).
func pageOf(contentType string) int {
	_, params, _ := mime.ParseMediaType(contentType)
	n, _ := strconv.Atoi(params[paramPage])
	return max(n, 0)
}

// pageSample is one page of a document, rendered (or its text layer
// read) when the page job's batch is prepared, so that a worker holds one
// page's pixels per page job, and pages of one document run on any
// worker.
type pageSample struct{ documents.Page }

// preparePage renders page n of the document in, or reads its text layer,
// on the document kept open since its last page here (openDocs).
func preparePage(in Input, n int) (Sample, error) {
	ctx := context.Background()
	d, err := openDocs.take(ctx, in.Data)
	if err != nil {
		return nil, documentError(err)
	}
	if n > d.Pages() {
		openDocs.give(in.Data, d, true)
		return nil, &InputError{Code: documents.CodeUndecodable, Message: "page " + strconv.Itoa(n) + " of a document of " + strconv.Itoa(d.Pages())}
	}
	_, params, _ := mime.ParseMediaType(in.ContentType)
	p, err := d.Page(ctx, n, params[paramOCR] == "force")
	openDocs.give(in.Data, d, err == nil)
	if err != nil {
		return nil, documentError(err)
	}
	return &pageSample{p}, nil
}

// readPage reads a page on this batch's sessions: a text-layer page
// without a model, the rest through OCR. Its result is the page's entry
// of the document's page_results.
func (p *ocrPipeline) readPage(s *pageSample, det, rec *ort.Session) Outcome {
	pr, err := documents.ReadPage(s.Page, func(pg documents.Page) (string, json.RawMessage, error) {
		r, err := ocr.Recognize(pg.Image, det, rec, p.dict, p.params)
		if err != nil {
			return "", nil, err
		}
		lines, err := json.Marshal(r.Lines)
		return r.Text, lines, err
	})
	if err != nil {
		return Outcome{Err: err}
	}
	b, err := json.Marshal(pr)
	return Outcome{Result: b, Err: err}
}

// documentError makes a document's *documents.Error the job's error code;
// anything else (a session failing) stays a fault of the run.
func documentError(err error) error {
	var de *documents.Error
	if errors.As(err, &de) {
		return &InputError{Code: de.Code, Message: de.Error()}
	}
	return err
}
