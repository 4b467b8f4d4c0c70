package bench

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"sync"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/pages"
)

const aboutDocuments = "The same scanned A4 pages (150 dpi) through the fleet's `ocr` model four times each, on one fleet, in the order images, document, document, images, document, images, images, document (so that the shared machine's drift hits both alike): as one PDF document job, and as one image job a page, all submitted at once. The ratio is the document's pages per second over the image jobs'; a document fans out into page jobs, scheduled and micro-batched like the image jobs, so this is what the fan-out costs (opening the document, making and publishing its pages, rendering each page from the PDF, assembling the result) against sending the pages as images."

// docPages is how many pages the documents scenario sends: 100, and 2 in
// the harness's own tiny run.
func docPages(s Size) int {
	if s.Name == "tiny" {
		return 2
	}
	return 100
}

func runDocuments(ctx context.Context, e *env, r *Result) error {
	f, err := e.startFleet(fleetOpts{name: "documents", models: []string{"ocr"}})
	if err != nil {
		return err
	}
	defer f.stop()
	n := docPages(e.size)
	// A4 at 150 dpi, text at the top left: the PDF page is exactly this
	// image, so both ways read the same pixels.
	var pngs [][]byte
	var pdfPages []pages.PDFPage
	for i := range n {
		text, err := pages.Render(pages.Regular, 28, pages.Lines[i%len(pages.Lines)])
		if err != nil {
			return err
		}
		page := image.NewGray(image.Rect(0, 0, 1240, 1754))
		draw.Draw(page, page.Rect, image.White, image.Point{}, draw.Src)
		draw.Draw(page, text.Bounds(), text, image.Point{}, draw.Src)
		var b bytes.Buffer
		if err := png.Encode(&b, page); err != nil {
			return err
		}
		pngs = append(pngs, b.Bytes())
		pdfPages = append(pdfPages, pages.PDFPage{Image: page, DPI: 150, WPt: 1240 * 72 / 150.0, HPt: 1754 * 72 / 150.0})
	}
	pdf := pages.PDF(pdfPages)
	c := client.New(f.URL, f.keys["standard"])
	one := func(data []byte, ct string) error {
		j, err := c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(data), ContentType: ct})
		if err != nil {
			return err
		}
		if j, err = c.Wait(ctx, j.ID); err != nil {
			return err
		}
		if j.Status != "succeeded" {
			return fmt.Errorf("job %s ended %s: %+v", j.ID, j.Status, j.Error)
		}
		return nil
	}
	// Warm up: the model's sessions, and pdfium's module compiled once.
	if err := one(pngs[0], "image/png"); err != nil {
		return fmt.Errorf("warm-up image: %w", err)
	}
	if err := one(pages.PDF(pdfPages[:1]), "application/pdf"); err != nil {
		return fmt.Errorf("warm-up document: %w", err)
	}

	imagesRun := func() (time.Duration, error) {
		t0 := time.Now()
		errs := make(chan error, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for _, p := range pngs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := one(p, "image/png"); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return 0, fmt.Errorf("image jobs: %w", err)
		}
		return time.Since(t0), nil
	}
	docRun := func() (time.Duration, error) {
		t0 := time.Now()
		if err := one(pdf, "application/pdf"); err != nil {
			return 0, fmt.Errorf("document: %w", err)
		}
		return time.Since(t0), nil
	}
	// A B B A B A A B: the machine's drift (it is shared), steady or
	// changing at a steady pace, hits both sides alike, and four runs a
	// side average out its bursts (A B B A alone read 0.83 and 1.05 in two
	// runs of one commit on a busy machine).
	bm, err := f.batchMeter("ocr")
	if err != nil {
		return err
	}
	var images, doc time.Duration
	var imageBatch, docBatch []float64
	for _, run := range []struct {
		f     func() (time.Duration, error)
		sum   *time.Duration
		batch *[]float64
	}{
		{imagesRun, &images, &imageBatch}, {docRun, &doc, &docBatch}, {docRun, &doc, &docBatch}, {imagesRun, &images, &imageBatch},
		{docRun, &doc, &docBatch}, {imagesRun, &images, &imageBatch}, {imagesRun, &images, &imageBatch}, {docRun, &doc, &docBatch},
	} {
		bm.since()
		d, err := run.f()
		if err != nil {
			return err
		}
		*run.sum += d
		*run.batch = append(*run.batch, bm.since())
	}
	images, doc = images/4, doc/4
	r.figure("image_jobs_mean_batch", mean(imageBatch), "pages per OCR run, image jobs")
	r.figure("document_pages_mean_batch", mean(docBatch), "pages per OCR run, the document's page jobs")

	imgRate, docRate := float64(n)/images.Seconds(), float64(n)/doc.Seconds()
	r.ratio("document_over_images", docRate/imgRate, "pages/s as one PDF job / pages/s as image jobs")
	r.figure("image_jobs_pages_per_s", imgRate, "pages/s")
	r.figure("document_pages_per_s", docRate, "pages/s")
	r.figure("pages", float64(n), "pages")
	r.atLeast("document_over_images", 0.9, "issue 14: a document is not much slower than its pages sent as jobs")
	return nil
}
