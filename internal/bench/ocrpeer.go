package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// ocrPages renders every set: perSet pages, taking its sizes in turn, then
// the fonts, and the lines in turn across all pages.
func ocrPages(dir string, perSet int) ([]ocrPage, error) {
	var out []ocrPage
	fonts := []struct {
		name string
		ttf  []byte
	}{{"regular", pages.Regular}, {"mono", pages.Mono}}
	n := 0
	for _, set := range ocrSets {
		for k := range perSet {
			n++
			size := set.sizes[k%len(set.sizes)]
			f := fonts[(k/len(set.sizes))%len(fonts)]
			lines := ocrPeerLines[n%len(ocrPeerLines)]
			img, err := pages.Render(f.ttf, size, lines)
			if err != nil {
				return nil, err
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
	next := make(chan int)
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
	for i := range ps {
		next <- i
	}
	close(next)
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
	ps, err := ocrPages(dir, e.size.OCRPages)
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
	// A first page warms the worker's sessions, as tesseract's first run
	// warms the page cache.
	if _, err := readFleet(ctx, c, ps[:1]); err != nil {
		return err
	}
	var fr, tr, wr []float64
	var fleetRead, tessRead, warmRead ocrReadings
	for round := range e.size.Rounds {
		if fleetRead, err = readFleet(ctx, c, ps); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		if tessRead, err = readTesseract(ctx, ps, procs); err != nil {
			return err
		}
		if warmRead, err = readTesseractWarm(ctx, dir, ps, procs); err != nil {
			return err
		}
		fr = append(fr, float64(len(ps))/fleetRead.took.Seconds())
		tr = append(tr, float64(len(ps))/tessRead.took.Seconds())
		wr = append(wr, float64(len(ps))/warmRead.took.Seconds())
		e.logf("ocr-peer round %d: fleet %.2f pages/s, tesseract %.2f pages/s, kept warm %.2f (%d pages)", round+1, fr[round], tr[round], wr[round], len(ps))
	}
	r.ratio("ocr_pages_per_s_over_tesseract", ratioOfRounds(fr, tr), "pages/s of the fleet over tesseract's, a process a page, same pages, same cores")
	r.atLeast("ocr_pages_per_s_over_tesseract", 2, "issue 15: at least twice tesseract's pages/s per core")
	r.ratio("ocr_pages_per_s_over_tesseract_warm", ratioOfRounds(fr, wr), "pages/s of the fleet over tesseract's kept warm (a process per core reading a list of pages), same pages, same cores")
	if n := differing(tessRead, warmRead); n > 0 {
		r.note(fmt.Sprintf("tesseract kept warm read %d pages otherwise than a process a page; CER is a process a page's", n))
	}
	ours, theirs := cerBySet(ps, fleetRead), cerBySet(ps, tessRead)
	var tb strings.Builder
	tb.WriteString("| set | pages | inferq CER | tesseract CER |\n|---|---:|---:|---:|\n")
	for _, s := range ocrSets {
		n := 0
		for _, p := range ps {
			if p.set == s.name {
				n++
			}
		}
		fmt.Fprintf(&tb, "| %s | %d | %.2f%% | %.2f%% |\n", s.name, n, 100*ours[s.name], 100*theirs[s.name])
		r.figure("ocr_cer_"+s.name, 100*ours[s.name], "% characters wrong, inferq")
		r.figure("tesseract_cer_"+s.name, 100*theirs[s.name], "% characters wrong, tesseract")
		r.atMostTarget("ocr_cer_"+s.name, math.Max(100*theirs[s.name], 0.5), "issue 15: no worse than tesseract on every set (or under 0.5%)")
	}
	r.figure("ocr_pages_per_s", mean(fr), "pages/s, the fleet")
	r.figure("tesseract_pages_per_s", mean(tr), fmt.Sprintf("pages/s, tesseract, a process a page, %d at a time", procs))
	r.figure("tesseract_warm_pages_per_s", mean(wr), fmt.Sprintf("pages/s, tesseract kept warm, %d processes reading lists", procs))
	r.addSection("CER by page set", tb.String())
	r.addSection("each round", roundsTable([]string{"inferq pages/s", "tesseract pages/s", "tesseract warm pages/s"}, fr, tr, wr))
	var wrong strings.Builder
	for i, p := range ps {
		got := strings.Join(strings.Fields(fleetRead.texts[i]), " ")
		if got != p.text {
			fmt.Fprintf(&wrong, "- %s: `%s`\n", filepath.Base(p.file), got)
		}
	}
	if wrong.Len() > 0 {
		r.addSection("pages inferq misread", wrong.String())
	}
	return nil
}
