package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/intake"
	"github.com/inferq/inferq/internal/jobs"
)

// docChecks bounds the documents one producer opens at once at submit:
// each holds a pdfium instance (up to its memory cap) for the moment it
// takes to count the pages.
const docChecks = 2

// checkDocument refuses at submit a document that its worker would fail
// at once, when that is cheap to know: over the page cap (413
// too_many_pages) or encrypted (422 encrypted_document). It counts pages
// and renders none (pdfium reads the page tree; a TIFF's pages are its
// directories). Anything else it cannot tell (a corrupt file) is left to
// the worker, which fails the job with its code. A stored input is read
// back from S3 for the check: documents only, and bounded like any input.
func (s *Server) checkDocument(ctx context.Context, j *jobs.Job, g *intake.Gather) error {
	if s.cfg.Documents == nil || !s.readsDocuments(j.Model) {
		return nil
	}
	data := j.Input
	if data == nil && j.InputKey != "" { // (a presigned upload is checked by its worker)
		if g.Wait() != nil {
			return nil // the submit fails on it in Commit
		}
		// Its first bytes say whether it is a document: only a document
		// is read back whole (an image is not read again at all).
		head, err := s.cfg.Blob.Head(ctx, j.InputKey, documents.SniffBytes)
		if err == nil && documents.Sniff(head) != documents.NotDocument {
			data, err = s.cfg.Blob.Get(ctx, j.InputKey, s.cfg.MaxInputBytes)
		}
		if err != nil {
			s.log.Warn("submit: document not read back for its check; its worker checks it", "key", j.InputKey, "err", err)
			return nil
		}
	}
	if documents.Sniff(data) == documents.NotDocument {
		return nil
	}
	select {
	case s.docChecks <- struct{}{}:
		defer func() { <-s.docChecks }()
	case <-ctx.Done():
		return ctx.Err()
	}
	d, err := s.cfg.Documents.Open(ctx, data)
	if err == nil {
		return d.Close()
	}
	var de *documents.Error
	if errors.As(err, &de) {
		switch de.Code {
		case documents.CodeTooManyPages:
			return errf(http.StatusRequestEntityTooLarge, de.Code, de.Error())
		case documents.CodeEncrypted:
			return errf(http.StatusUnprocessableEntity, de.Code, de.Error())
		}
	}
	return nil
}

// readsDocuments says whether a model reads PDFs and TIFFs page by page
// (the OCR pipeline).
func (s *Server) readsDocuments(model string) bool {
	m := s.model(model)
	return m != nil && m.Preprocess.Kind == "ocr"
}
