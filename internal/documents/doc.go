// Package documents turns a multi-page upload (a PDF, a multi-page TIFF)
// into pages the OCR model can read: it recognises documents by their
// magic bytes, counts and renders their pages under hard limits (page
// count, pixels, time and memory per render), reads a PDF page's text
// layer where it has one, and assembles the pages' readings into one
// result.
//
// PDFs are read by pdfium compiled to WebAssembly and run by wazero
// (github.com/klippa-app/go-pdfium, webassembly mode): no cgo, no system
// library, and a hostile PDF meets pdfium inside a sandbox with no file
// system and a capped linear memory, which a render that runs past its
// time is killed with.
package documents
