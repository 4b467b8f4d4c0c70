package documents

import (
	"context"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/enums"
	pdferrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// pdfEngine is the process's one pdfium pool. Compiling the wasm module
// takes seconds, so it is done once, on the first PDF, and kept.
type pdfEngine struct {
	lim  Limits
	mu   sync.Mutex
	pool pdfium.Pool
}

func newPDFEngine(lim Limits) *pdfEngine { return &pdfEngine{lim: lim} }

// compiled is pdfium's compiled module, shared by every engine of the
// process (an engine with other limits, a test's, need not compile it
// again) and kept on disk where the user has a cache directory
// ($XDG_CACHE_HOME or ~/.cache, under inferq/pdfium), so that the next
// process on the host loads it in milliseconds instead of compiling it
// for seconds. Without one it is kept in memory alone.
var compiled = sync.OnceValue(func() wazero.CompilationCache {
	if dir, err := os.UserCacheDir(); err == nil {
		if c, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "inferq", "pdfium")); err == nil {
			return c
		}
	}
	return wazero.NewCompilationCache()
})

func (e *pdfEngine) get() (pdfium.Pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pool != nil {
		return e.pool, nil
	}
	rc := wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		// The memory cap per instance: a PDF that asks pdfium for more
		// traps instead of taking the worker's memory.
		WithMemoryLimitPages(uint32(e.lim.MemoryBytes / 65536)).
		// Kill cancels an instance's context; this makes that stop a
		// render in flight, which is how the time cap is enforced.
		WithCloseOnContextDone(true).
		WithCompilationCache(compiled())
	pool, err := webassembly.Init(webassembly.Config{
		MinIdle:       0,
		MaxIdle:       1,
		MaxTotal:      4,
		RuntimeConfig: rc,
		// No file system at all: documents are read from memory, and a
		// hostile one must not reach the host's files.
		FSConfig: wazero.NewFSConfig(),
	})
	if err != nil {
		return nil, err
	}
	e.pool = pool
	return pool, nil
}

// warm readies the pool: pdfium's module compiled (or loaded from the
// disk cache) and one instance started, kept idle for the first PDF.
func (e *pdfEngine) warm(ctx context.Context) error {
	pool, err := e.get()
	if err != nil {
		return err
	}
	inst, err := pool.GetInstanceWithContext(ctx)
	if err != nil {
		return err
	}
	return inst.Close()
}

func (e *pdfEngine) close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pool == nil {
		return nil
	}
	err := e.pool.Close()
	e.pool = nil
	return err
}

// pdfDoc is an open PDF on its own pdfium instance.
type pdfDoc struct {
	lim   Limits
	inst  pdfium.Pdfium
	doc   references.FPDF_DOCUMENT
	pages int
	dead  bool // killed: the instance is gone
	data  []byte
}

func (e *pdfEngine) open(ctx context.Context, data []byte) (*pdfDoc, error) {
	pool, err := e.get()
	if err != nil {
		return nil, err
	}
	inst, err := pool.GetInstanceWithContext(ctx)
	if err != nil {
		return nil, err
	}
	d := &pdfDoc{lim: e.lim, inst: inst, data: data}
	err = d.guard(ctx, 0, func() error {
		res, err := inst.FPDF_LoadMemDocument(&requests.FPDF_LoadMemDocument{Data: &d.data})
		if err != nil {
			return err
		}
		d.doc = res.Document
		n, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: d.doc})
		if err != nil {
			return err
		}
		d.pages = n.PageCount
		return nil
	})
	if err != nil {
		d.Close()
		switch {
		case errors.Is(err, pdferrors.ErrPassword), errors.Is(err, pdferrors.ErrSecurity):
			return nil, errorf(CodeEncrypted, 0, "the PDF is encrypted")
		case errors.As(err, new(*Error)):
			return nil, err
		}
		return nil, errorf(CodeUndecodable, 0, "the PDF cannot be read: %v", err)
	}
	switch {
	case d.pages <= 0:
		d.Close()
		return nil, errorf(CodeUndecodable, 0, "the PDF has no pages")
	case d.pages > e.lim.MaxPages:
		d.Close()
		return nil, errorf(CodeTooManyPages, 0, "the document has %d pages, more than %d (INFERQ_MAX_PAGES)", d.pages, e.lim.MaxPages)
	}
	return d, nil
}

// guard runs f, pdfium's work for page (0: the document), within the
// render time cap; past it, or past ctx, the instance is killed (its wasm
// execution stops) and the document can no longer be used. A trap in the
// sandbox (the memory cap) comes back as a panic or error from f.
func (d *pdfDoc) guard(ctx context.Context, page int, f func() error) error {
	if d.dead {
		return errorf(CodeRenderTimeout, page, "the document's renderer was stopped")
	}
	ctx, cancel := context.WithTimeout(ctx, d.lim.RenderTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- errorf(CodeRenderMemory, page, "pdfium stopped: %v", r)
			}
		}()
		done <- f()
	}()
	select {
	case err := <-done:
		if err != nil && isMemoryTrap(err) {
			return errorf(CodeRenderMemory, page, "rendering needs more than %d MiB", d.lim.MemoryBytes>>20)
		}
		return err
	case <-ctx.Done():
		d.dead = true
		_ = d.inst.Kill()
		<-done
		if ctxErr := ctx.Err(); errors.Is(ctxErr, context.DeadlineExceeded) {
			return errorf(CodeRenderTimeout, page, "rendering took longer than %s", d.lim.RenderTimeout)
		}
		return ctx.Err()
	}
}

// isMemoryTrap tells the sandbox's memory cap at work: a trap when pdfium
// grows its memory past it, or pdfium's own refusal when a bitmap does
// not fit in what is left.
func isMemoryTrap(err error) bool {
	s := err.Error()
	return strings.Contains(s, "could not create bitmap") || strings.Contains(s, "out of memory") || strings.Contains(s, "memory limit") || strings.Contains(s, "out of bounds memory")
}

func (d *pdfDoc) Pages() int { return d.pages }

func (d *pdfDoc) Page(ctx context.Context, n int, forceOCR bool) (Page, error) {
	if n < 1 || n > d.pages {
		return Page{}, errorf(CodeUndecodable, n, "no such page")
	}
	p := Page{Number: n}
	ref := requests.Page{ByIndex: &requests.PageByIndex{Document: d.doc, Index: n - 1}}
	err := d.guard(ctx, n, func() error {
		if !forceOCR {
			t, err := d.inst.GetPageText(&requests.GetPageText{Page: ref})
			if err != nil {
				return err
			}
			if strings.TrimSpace(t.Text) != "" {
				p.Source, p.Text = SourceText, normalizeText(t.Text)
				return nil
			}
		}
		size, err := d.inst.FPDF_GetPageSizeByIndex(&requests.FPDF_GetPageSizeByIndex{Document: d.doc, Index: n - 1})
		if err != nil {
			return err
		}
		dpi, err := d.dpiFor(n, size.Width, size.Height)
		if err != nil {
			return err
		}
		// A scanned page's own pixels where it has them (scan.go); an
		// error there leaves the page to the renderer, which reports its own.
		if g, ok, err := d.scannedImage(ref, dpi, size.Width, size.Height); err == nil && ok {
			p.Source, p.Image = SourceOCR, g
			return nil
		}
		// No image smoothing: in wasm it tripled a scanned page's render
		// time for no gain in CER (docs/models.md).
		r, err := d.inst.RenderPageInDPI(&requests.RenderPageInDPI{Page: ref, DPI: dpi, ImageFormat: requests.RenderImageFormatGrayscale, RenderFlags: enums.FPDF_RENDER_FLAG_RENDER_NO_SMOOTHIMAGE})
		if err != nil {
			return err
		}
		defer r.Cleanup()
		// The pixels live in the wasm memory until Cleanup: copy them out.
		g, ok := r.Result.RenderedImage.(*image.Gray)
		if !ok {
			return errorf(CodeUndecodable, n, "pdfium rendered no image")
		}
		// pdfium pads rows to 4 bytes: copy row by row into a tight image.
		cp := image.NewGray(g.Rect)
		w := g.Rect.Dx()
		for y := 0; y < g.Rect.Dy(); y++ {
			copy(cp.Pix[y*cp.Stride:y*cp.Stride+w], g.Pix[y*g.Stride:y*g.Stride+w])
		}
		p.Source, p.Image = SourceOCR, cp
		return nil
	})
	if err != nil {
		if errors.As(err, new(*Error)) {
			return Page{}, err
		}
		return Page{}, errorf(CodeUndecodable, n, "%v", err)
	}
	return p, nil
}

// dpiFor is the DPI page n renders at: the configured DPI, lowered so the
// image stays within MaxPixels (a huge page box), refused below MinDPI.
func (d *pdfDoc) dpiFor(n int, wPt, hPt float64) (int, error) {
	if !(wPt > 0 && hPt > 0) || math.IsInf(wPt, 0) || math.IsInf(hPt, 0) {
		return 0, errorf(CodeUndecodable, n, "page box %gx%g points", wPt, hPt)
	}
	dpi := float64(d.lim.DPI)
	if px := wPt / 72 * dpi * hPt / 72 * dpi; px > float64(d.lim.MaxPixels) {
		dpi *= math.Sqrt(float64(d.lim.MaxPixels) / px)
	}
	// Whatever the pixel count, no side may pass what the recognizer takes.
	if side := math.Max(wPt, hPt) / 72 * dpi; side > 1<<15 {
		dpi *= (1 << 15) / side
	}
	if dpi < float64(d.lim.MinDPI) {
		return 0, errorf(CodePageTooLarge, n, "the page box (%.0fx%.0f points) is too large to read within %d pixels", wPt, hPt, d.lim.MaxPixels)
	}
	return int(dpi), nil
}

// normalizeText turns pdfium's text (CRLF line ends) into plain lines.
func normalizeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.TrimSpace(s)
}

func (d *pdfDoc) Close() error {
	if d.inst == nil || d.dead {
		return nil
	}
	if d.doc != "" {
		_, _ = d.inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: d.doc})
	}
	err := d.inst.Close()
	d.inst = nil
	return err
}
