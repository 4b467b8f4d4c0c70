package documents

import (
	"bytes"
	"context"
	"image"
	"time"
)

// Kind is what kind of document an upload is.
type Kind int

// The kinds of upload Sniff tells apart.
const (
	NotDocument Kind = iota
	PDF
	TIFF
)

// SniffBytes is how many leading bytes Sniff needs.
const SniffBytes = 5

// Sniff says from its first bytes whether data is a document. A TIFF is a
// document whatever its page count: one page reads as a one-page document,
// so that a TIFF always gives the same result shape.
func Sniff(data []byte) Kind {
	switch {
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return PDF
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return TIFF
	}
	return NotDocument
}

// Limits bound what one document may cost.
type Limits struct {
	// MaxPages is the most pages a document may have (INFERQ_MAX_PAGES).
	MaxPages int
	// DPI is the resolution PDF pages are rendered at for OCR.
	DPI int
	// MaxPixels caps one rendered page: a larger page box is rendered at
	// a lower DPI, down to MinDPI, and refused below it.
	MaxPixels int
	// MinDPI is the lowest resolution worth reading: a page whose box is
	// so large that MaxPixels forces it lower fails with page_too_large.
	MinDPI int
	// RenderTimeout bounds opening a document and rendering one page.
	RenderTimeout time.Duration
	// MemoryBytes caps pdfium's WebAssembly memory.
	MemoryBytes int64
}

// Defaults: 150 dpi reads 8-12 pt scans within 1% CER and keeps 8 pt
// type about 17 px high (the table in docs/models.md); 1<<23 pixels holds an A3 page at
// 150 dpi; 256 MiB of wasm memory renders such a page with room to spare.
const (
	DefaultMaxPages      = 500
	DefaultDPI           = 150
	DefaultMaxPixels     = 1 << 23
	DefaultMinDPI        = 36
	DefaultRenderTimeout = 20 * time.Second
	DefaultMemoryBytes   = 256 << 20
)

// WithDefaults fills the zero fields of l.
func (l Limits) WithDefaults() Limits {
	if l.MaxPages <= 0 {
		l.MaxPages = DefaultMaxPages
	}
	if l.DPI <= 0 {
		l.DPI = DefaultDPI
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MinDPI <= 0 {
		l.MinDPI = DefaultMinDPI
	}
	if l.RenderTimeout <= 0 {
		l.RenderTimeout = DefaultRenderTimeout
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = DefaultMemoryBytes
	}
	return l
}

// Page is one page ready to read: its text when it came from the PDF's
// text layer (Source "text"), else an image for OCR (Source "ocr").
type Page struct {
	Number int // 1-based
	Source string
	Text   string
	Image  image.Image
}

// Page sources.
const (
	SourceText = "text"
	SourceOCR  = "ocr"
)

// Document is an open document whose pages are rendered one at a time, so
// that only one page's pixels are held at once. It is not safe for
// concurrent use.
type Document interface {
	// Pages is the page count.
	Pages() int
	// Page renders page n (1-based); forceOCR renders it even where it
	// has a text layer.
	Page(ctx context.Context, n int, forceOCR bool) (Page, error)
	// Close frees what the document holds.
	Close() error
}

// Opener opens documents within limits; one per process.
type Opener struct {
	lim Limits
	pdf *pdfEngine
}

// NewOpener returns an Opener; pdfium's WebAssembly module is compiled on
// the first PDF or Warm, not here, so that a process that never reads one
// pays nothing.
func NewOpener(lim Limits) *Opener {
	lim = lim.WithDefaults()
	return &Opener{lim: lim, pdf: newPDFEngine(lim)}
}

// Limits is the limits o applies.
func (o *Opener) Limits() Limits { return o.lim }

// Open opens data, a document of the kind Sniff said. An *Error says why
// it can never be read.
func (o *Opener) Open(ctx context.Context, data []byte) (Document, error) {
	switch Sniff(data) {
	case PDF:
		return o.pdf.open(ctx, data)
	case TIFF:
		return openTIFF(data, o.lim)
	}
	return nil, errorf(CodeUndecodable, 0, "not a PDF or TIFF document")
}

// Warm readies pdfium ahead of the first PDF, which would otherwise wait
// seconds for its module to compile (docs/operations.md).
func (o *Opener) Warm(ctx context.Context) error { return o.pdf.warm(ctx) }

// Close releases pdfium.
func (o *Opener) Close() error { return o.pdf.close() }
