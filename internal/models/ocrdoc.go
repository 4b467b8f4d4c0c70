package models

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"sync"

	"github.com/inferq/inferq/internal/documents"
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

// documentSample is a PDF or multi-page TIFF that opened within the
// limits; it is opened again to be read, so that a sample that is never
// run holds no pdfium instance.
type documentSample struct {
	data     []byte
	forceOCR bool
	docs     *documents.Opener
	progress func(done, total int) bool
}

// prepareDocument checks a document at once (encrypted, corrupt, over the
// page cap), so that such a job fails before it takes a batch slot.
// "application/pdf; ocr=force" reads every page through OCR, text layer
// or not.
func prepareDocument(in Input) (Sample, error) {
	docs := docOpener()
	d, err := docs.Open(context.Background(), in.Data)
	if err != nil {
		return nil, documentError(err)
	}
	_ = d.Close()
	_, params, _ := mime.ParseMediaType(in.ContentType)
	return &documentSample{data: in.Data, forceOCR: params["ocr"] == "force", docs: docs, progress: in.Progress}, nil
}

// readDocument reads a document's pages in order on this batch's
// sessions: text-layer pages without a model, the rest through OCR.
func (p *ocrPipeline) readDocument(s *documentSample, det, rec *ort.Session) Outcome {
	ctx := context.Background()
	d, err := s.docs.Open(ctx, s.data)
	if err != nil {
		return Outcome{Err: documentError(err)}
	}
	defer d.Close()
	res, err := documents.Read(ctx, d, s.forceOCR, s.progress, func(pg documents.Page) (string, json.RawMessage, error) {
		r, err := ocr.Recognize(pg.Image, det, rec, p.dict, p.params)
		if err != nil {
			return "", nil, err
		}
		lines, err := json.Marshal(r.Lines)
		return r.Text, lines, err
	})
	if err != nil {
		return Outcome{Err: documentError(err)}
	}
	b, err := json.Marshal(res)
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
