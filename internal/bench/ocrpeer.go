package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/pages"
)

const aboutOCRPeer = "The fleet's `ocr` model against Debian's `tesseract` 5 (`eng`), on page sets the harness renders itself with known text: clean pages in the Go fonts (regular and mono) at 14 to 28 px; scans spoilt by JPEG at quality 25 to 40, by a blur, by low contrast (ink at 110, paper at 190), by a rotation of 1 to 2 degrees; and small type (12 and 14 px) with JPEG. Both read the same PNG or JPEG files on the same cores: every page is submitted at once to the fleet (one worker, all cores, a session per core with one thread each: `INFERQ_INSTANCES` = cores, `INFERQ_THREADS=1`), and tesseract runs with `OMP_THREAD_LIMIT=1` as the issue has it, a process a page and one per core at a time, and again kept warm: a process per core reading its share of the pages from a list, its language model loaded once (the same readings; on pages this small, loading the model is most of a process's time, so this is the peer at its fastest). CER is the edit distance between the page's text and the reading, both with runs of white space made one space, over the page's characters. Phases alternate fleet, tesseract a process a page, tesseract kept warm."

// ocrPage is one page of the bench's OCR sets.
type ocrPage struct {
	set  string
	text string // the true text, white space made single spaces
	file string
	data []byte
	ct   string
}

// ocrPeerLines are the pages' texts: the pages package's business lines,
// lines with the shapes OCR gets wrong (case twins in capitals and small
// letters, digits beside letters, punctuation), and passages no OCR
// setting was tried on (pages.HeldOutLines). There are 12, as many as a
// set's pages at the full size, so each page of a set reads a passage of
// its own.
var ocrPeerLines = slices.Concat(pages.Lines, pages.NoisyLines, pages.HeldOutLines)

// ocrSet is a page set: the sizes its pages are set at, how they are
// spoilt (the k-th page of a size gets spoil(k)), and, for spoilt ones,
// the JPEG quality they are saved at (0: PNG).
type ocrSet struct {
	name    string
	sizes   []float64
	spoil   func(k int) pages.Scan
	quality func(k int) int
}

func always[T any](v T) func(int) T { return func(int) T { return v } }

var ocrSets = []ocrSet{
	{"clean", []float64{14, 20, 28}, always[pages.Scan](pages.Plain), always(0)},
	{"jpeg25-40", []float64{16, 20, 24}, always[pages.Scan](pages.Plain), func(k int) int { return 25 + 5*(k%4) }},
	{"blur", []float64{16, 20, 24}, always[pages.Scan](pages.Blur), always(40)},
	{"low-contrast", []float64{16, 20, 24}, always[pages.Scan](pages.LowContrast), always(35)},
	{"rotated", []float64{16, 20, 24}, func(k int) pages.Scan { return pages.Rotate(1 + float64(k%3)/2) }, always(40)},
	{"small", []float64{12, 14}, always[pages.Scan](pages.Plain), always(40)},
}

// ocrFullSets are full pages, measured apart from the sets: 30
// long lines of small type on an A4 page at 150 dpi (pages.A4,
// pages.FullPage), as a scanned document's page reaches the fleet.
var ocrFullSets = []ocrSet{
	{"a4-150dpi", []float64{14, 17}, always[pages.Scan](pages.Plain), always(40)},
}

// ocrPages renders every set: perSet pages, taking its sizes in turn, then
// the fonts, and the passages in turn across all pages (on a full page,
// all of them from that one on).
func ocrPages(dir string, perSet int, sets []ocrSet, full bool) ([]ocrPage, error) {
	var out []ocrPage
	fonts := []struct {
		name string
		ttf  []byte
	}{{"regular", pages.Regular}, {"mono", pages.Mono}}
	n := 0
	for _, set := range sets {
		for k := range perSet {
			n++
			size := set.sizes[k%len(set.sizes)]
			f := fonts[(k/len(set.sizes))%len(fonts)]
			lines := ocrPeerLines[n%len(ocrPeerLines)]
			if full {
				lines = pages.FullPage(ocrPeerLines, n)
			}
			var img image.Image
			img, err := pages.Render(f.ttf, size, lines)
			if err != nil {
				return nil, err
			}
			if full {
				img = pages.A4(img)
			}
			page, err := set.spoil(k)(img)
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			ct, ext := "image/png", ".png"
			if q := set.quality(k); q > 0 {
				ct, ext = "image/jpeg", ".jpg"
				err = jpeg.Encode(&b, page, &jpeg.Options{Quality: q})
			} else {
				err = png.Encode(&b, page)
			}
			if err != nil {
				return nil, err
			}
			p := ocrPage{set: set.name, text: strings.Join(strings.Fields(strings.Join(lines, " ")), " "),
				file: filepath.Join(dir, fmt.Sprintf("%s-%02d-%s-%v%s", set.name, k, f.name, size, ext)), data: b.Bytes(), ct: ct}
			if err := os.WriteFile(p.file, p.data, 0o644); err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// ocrReadings are one side's readings of every page, in the pages' order,
// and how long the side took for all of them.
type ocrReadings struct {
	texts []string
	took  time.Duration
}

// readFleet submits every page at once and waits for each result.
func readFleet(ctx context.Context, c *client.Client, ps []ocrPage) (ocrReadings, error) {
	out := ocrReadings{texts: make([]string, len(ps))}
	start := time.Now()
	errs := make(chan error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := c.Submit(ctx, client.Submit{Model: "ocr", Input: bytes.NewReader(p.data), FileName: filepath.Base(p.file), ContentType: p.ct})
			if err == nil {
				j, err = c.Wait(ctx, j.ID)
			}
			if err == nil && j.Status != "succeeded" {
				err = fmt.Errorf("job %s %s: %+v", j.ID, j.Status, j.Error)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", p.file, err)
				return
			}
			var res struct{ Text string }
			if err := json.Unmarshal(j.Result, &res); err != nil {
				errs <- fmt.Errorf("%s: result: %w", p.file, err)
				return
			}
			out.texts[i] = res.Text
		}()
	}
	wg.Wait()
	out.took = time.Since(start)
	close(errs)
	return out, <-errs
}

// readTesseract reads every page with tesseract, one single-threaded
// process per core.
func readTesseract(ctx context.Context, ps []ocrPage, procs int) (ocrReadings, error) {
	out := ocrReadings{texts: make([]string, len(ps))}
	start := time.Now()
	// Every page is queued before the readers start, so that readers
	// which stop at an error (a tesseract killed when ctx ends) leave no
	// sender blocked behind them.
	next := make(chan int, len(ps))
	for i := range ps {
		next <- i
	}
	close(next)
	errs := make(chan error, procs)
	var wg sync.WaitGroup
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cmd := exec.CommandContext(ctx, "tesseract", ps[i].file, "stdout", "-l", "eng")
				cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
				b, err := cmd.Output()
				if err != nil {
					errs <- fmt.Errorf("tesseract %s: %w", ps[i].file, err)
					return
				}
				out.texts[i] = string(b)
			}
		}()
	}
	wg.Wait()
	out.took = time.Since(start)
	close(errs)
	return out, <-errs
}

// readTesseractWarm reads every page with tesseract kept warm: one
// single-threaded process per core, each given its share of the pages as
// a list file, so that its language model loads once rather than once a
// page (how the CLI is best run over many pages; on the bench's small
// pages, loading is most of a per-page run). Tesseract separates the
// pages of a list with a form feed.
func readTesseractWarm(ctx context.Context, dir string, ps []ocrPage, procs int) (ocrReadings, error) {
	out := ocrReadings{texts: make([]string, len(ps))}
	shares := make([][]int, procs)
	for i := range ps {
		shares[i%procs] = append(shares[i%procs], i)
	}
	lists := make([]string, procs)
	for k, share := range shares {
		var b strings.Builder
		for _, i := range share {
			b.WriteString(ps[i].file + "\n")
		}
		lists[k] = filepath.Join(dir, fmt.Sprintf("tesseract-list-%d.txt", k))
		if err := os.WriteFile(lists[k], []byte(b.String()), 0o644); err != nil {
			return out, err
		}
	}
	start := time.Now()
	errs := make(chan error, procs)
	var wg sync.WaitGroup
	for k, share := range shares {
		if len(share) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, "tesseract", lists[k], "stdout", "-l", "eng")
			cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
			b, err := cmd.Output()
			if err != nil {
				errs <- fmt.Errorf("tesseract %s: %w", lists[k], err)
				return
			}
			texts := strings.Split(string(b), "\f")
			if len(texts) == len(share)+1 && strings.TrimSpace(texts[len(share)]) == "" {
				texts = texts[:len(share)] // a separator after the last page too
			}
			if len(texts) != len(share) {
				errs <- fmt.Errorf("tesseract %s: %d pages read, want %d", lists[k], len(texts), len(share))
				return
			}
			for j, i := range share {
				out.texts[i] = texts[j]
			}
		}()
	}
	wg.Wait()
	out.took = time.Since(start)
	close(errs)
	return out, <-errs
}

// differing counts the pages two readings read differently (white space
// aside).
func differing(a, b ocrReadings) int {
	n := 0
	for i := range a.texts {
		if strings.Join(strings.Fields(a.texts[i]), " ") != strings.Join(strings.Fields(b.texts[i]), " ") {
			n++
		}
	}
	return n
}

// cerBySet is each set's character error rate for one side's readings.
func cerBySet(ps []ocrPage, r ocrReadings) map[string]float64 {
	edits, chars := map[string]int{}, map[string]int{}
	for i, p := range ps {
		got := strings.Join(strings.Fields(r.texts[i]), " ")
		edits[p.set] += pages.Levenshtein(got, p.text)
		chars[p.set] += len([]rune(p.text))
	}
	out := map[string]float64{}
	for s, c := range chars {
		out[s] = float64(edits[s]) / float64(c)
	}
	return out
}

func runOCRPeer(ctx context.Context, e *env, r *Result) error {
	if _, err := exec.LookPath("tesseract"); err != nil {
		return fmt.Errorf("tesseract not found: run scripts/setup.sh (it installs Debian's tesseract-ocr and tesseract-ocr-eng)")
	}
	if _, err := os.Stat(filepath.Join(e.models, "ocr")); err != nil {
		return fmt.Errorf("model ocr not in %s: run `make deps`", e.models)
	}
	dir, err := e.subdir("ocr-pages")
	if err != nil {
		return err
	}
	ps, err := ocrPages(dir, e.size.OCRPages, ocrSets, false)
	if err != nil {
		return err
	}
	full, err := ocrPages(dir, e.size.OCRPages, ocrFullSets, true)
	if err != nil {
		return err
	}
	procs := runtime.NumCPU()
	// The worker runs a session per core with one thread each, as
	// tesseract runs a process per core: a page's runs (a detection, a
	// few short lines) are too small for ONNX Runtime's threads to share
	// well, and two sessions of one thread read 1.2 times the pages of
	// one with two (docs/operations.md).
	f, err := e.startFleet(fleetOpts{name: "ocr-peer", models: []string{"ocr"},
		workerEnv: []string{fmt.Sprintf("INFERQ_INSTANCES=%d", procs), "INFERQ_THREADS=1"}})
	if err != nil {
		return err
	}
	defer f.stop()
	c := client.New(f.URL, f.keys["bulk"])
	// Warm up, as tesseract's first run warms the page cache: a page for
	// each of the worker's sessions, and a one-page PDF, which waits for
	// pdfium's module. A worker that serves `ocr` compiles it in the
	// background when it starts, once per host (then it loads from the
	// disk cache in a fraction of a second); on a fresh machine that took
	// about 4 s of a core's time out of the first round's fleet phase (10.4
	// pages/s against 18.0 in the second round; with the module cached,
	// 17.3 and 17.2).
	warm := []ocrPage{{file: "warm-up.pdf", data: pages.PDF([]pages.PDFPage{{Text: []string{"Warm-up"}}}), ct: "application/pdf"}}
	if _, err := readFleet(ctx, c, append(warm, ps[:min(procs, len(ps))]...)); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	// The sets and the full pages are read in phases of their
	// own, each group by the fleet, by tesseract a process a page and by
	// tesseract kept warm in turn, so that the ratio stays over
	// the pages.
	small, a4 := &ocrGroup{sets: ocrSets, pages: ps}, &ocrGroup{sets: ocrFullSets, pages: full}
	groups := []*ocrGroup{small, a4}
	for round := range e.size.Rounds {
		for _, g := range groups {
			if err := g.read(ctx, c, dir, procs); err != nil {
				return err
			}
		}
		e.logf("ocr-peer round %d: fleet %.2f pages/s, tesseract %.2f pages/s, kept warm %.2f (%d pages); full pages: fleet %.2f, tesseract %.2f, kept warm %.2f (%d pages)",
			round+1, small.fr[round], small.tr[round], small.wr[round], len(ps), a4.fr[round], a4.tr[round], a4.wr[round], len(full))
	}
	r.ratio("ocr_pages_per_s_over_tesseract", ratioOfRounds(small.fr, small.tr), "pages/s of the fleet over tesseract's, a process a page, same pages, same cores")
	r.atLeast("ocr_pages_per_s_over_tesseract", 2, "issue 15: at least twice tesseract's pages/s per core")
	r.ratio("ocr_pages_per_s_over_tesseract_warm", ratioOfRounds(small.fr, small.wr), "pages/s of the fleet over tesseract's kept warm (a process per core reading a list of pages), same pages, same cores")
	r.ratio("ocr_a4_pages_per_s_over_tesseract", ratioOfRounds(a4.fr, a4.tr), "full A4 pages: pages/s of the fleet over tesseract's, a process a page")
	r.ratio("ocr_a4_pages_per_s_over_tesseract_warm", ratioOfRounds(a4.fr, a4.wr), "full A4 pages: pages/s of the fleet over tesseract's kept warm")
	for _, g := range groups {
		if n := differing(g.tess, g.warm); n > 0 {
			r.note(fmt.Sprintf("tesseract kept warm read %d pages otherwise than a process a page; CER is a process a page's", n))
		}
	}
	var tb strings.Builder
	tb.WriteString("| set | pages | inferq CER | tesseract CER |\n|---|---:|---:|---:|\n")
	for _, g := range groups {
		ours, theirs := cerBySet(g.pages, g.fleet), cerBySet(g.pages, g.tess)
		for _, s := range g.sets {
			n := 0
			for _, p := range g.pages {
				if p.set == s.name {
					n++
				}
			}
			fmt.Fprintf(&tb, "| %s | %d | %.2f%% | %.2f%% |\n", s.name, n, 100*ours[s.name], 100*theirs[s.name])
			r.figure("ocr_cer_"+s.name, 100*ours[s.name], "% characters wrong, inferq")
			r.figure("tesseract_cer_"+s.name, 100*theirs[s.name], "% characters wrong, tesseract")
			r.atMostTarget("ocr_cer_"+s.name, math.Max(100*theirs[s.name], 0.5), "issue 15: no worse than tesseract on every set (or under 0.5%)")
		}
	}
	r.figure("ocr_pages_per_s", mean(small.fr), "pages/s, the fleet")
	r.figure("tesseract_pages_per_s", mean(small.tr), fmt.Sprintf("pages/s, tesseract, a process a page, %d at a time", procs))
	r.figure("tesseract_warm_pages_per_s", mean(small.wr), fmt.Sprintf("pages/s, tesseract kept warm, %d processes reading lists", procs))
	r.figure("ocr_a4_pages_per_s", mean(a4.fr), "full A4 pages/s, the fleet")
	r.figure("tesseract_a4_pages_per_s", mean(a4.tr), "full A4 pages/s, tesseract, a process a page")
	r.figure("tesseract_warm_a4_pages_per_s", mean(a4.wr), "full A4 pages/s, tesseract kept warm")
	r.addSection("CER by page set", tb.String())
	r.addSection("each round", roundsTable([]string{"inferq pages/s", "tesseract pages/s", "tesseract warm pages/s", "inferq A4 pages/s", "tesseract A4 pages/s", "tesseract warm A4 pages/s"},
		small.fr, small.tr, small.wr, a4.fr, a4.tr, a4.wr))
	var wrong strings.Builder
	for _, g := range groups {
		for i, p := range g.pages {
			got := strings.Join(strings.Fields(g.fleet.texts[i]), " ")
			switch {
			case got == p.text:
			case g == a4:
				fmt.Fprintf(&wrong, "- %s: %d characters wrong of %d\n", filepath.Base(p.file), pages.Levenshtein(got, p.text), len([]rune(p.text)))
			default:
				fmt.Fprintf(&wrong, "- %s: `%s`\n", filepath.Base(p.file), got)
			}
		}
	}
	if wrong.Len() > 0 {
		r.addSection("pages inferq misread", wrong.String())
	}
	return nil
}

// ocrGroup is a group of pages read in phases of their own: the sets
// they were made from, each side's pages/s by round and its last
// readings.
type ocrGroup struct {
	sets              []ocrSet
	pages             []ocrPage
	fr, tr, wr        []float64
	fleet, tess, warm ocrReadings
}

// read reads the group once by each side in turn: the fleet, tesseract a
// process a page, tesseract kept warm.
func (g *ocrGroup) read(ctx context.Context, c *client.Client, dir string, procs int) error {
	var err error
	if g.fleet, err = readFleet(ctx, c, g.pages); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if g.tess, err = readTesseract(ctx, g.pages, procs); err != nil {
		return err
	}
	if g.warm, err = readTesseractWarm(ctx, dir, g.pages, procs); err != nil {
		return err
	}
	rate := func(r ocrReadings) float64 { return float64(len(g.pages)) / r.took.Seconds() }
	g.fr, g.tr, g.wr = append(g.fr, rate(g.fleet)), append(g.tr, rate(g.tess)), append(g.wr, rate(g.warm))
	return nil
}
