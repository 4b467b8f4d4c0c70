package models

import (
	"encoding/json"
	"fmt"
	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/models/catalog"
	"image"
	"os"

	"github.com/inferq/inferq/internal/models/ocr"
	"github.com/inferq/inferq/internal/models/preprocess"
	"github.com/inferq/inferq/internal/ort"
)

// ocrPipeline reads a page: text detection on the model's main graph, then
// recognition of each line, batched over the lines, on the "rec" graph
// with the "dict" character list.
type ocrPipeline struct {
	man    *catalog.Manifest
	dict   []string
	params ocr.Params
	recs   chan *ort.Session
	all    []*ort.Session
}

func newOCRPipeline(man *catalog.Manifest, opts ort.Options, instances int) (pipeline, error) {
	if man.Postprocess.Kind != "ocr" {
		return nil, fmt.Errorf("preprocess ocr goes with postprocess ocr, not %s", man.Postprocess.Kind)
	}
	recFile, dictFile := man.Files["rec"], man.Files["dict"]
	if recFile == "" || dictFile == "" {
		return nil, fmt.Errorf("an ocr model names its files.rec (recognition graph) and files.dict (characters)")
	}
	dict, err := readDict(man.Path(dictFile))
	if err != nil {
		return nil, fmt.Errorf("dict: %w", err)
	}
	p := &ocrPipeline{man: man, dict: dict, params: ocr.DefaultParams(), recs: make(chan *ort.Session, instances)}
	if opts.Device.CUDA {
		// A GPU runs a padded batch of lines about as fast as one line:
		// batch them whatever their widths (Params.RecSpread).
		p.params.RecSpread = -1
	}
	// The fleet reads Latin text unless the model names the characters it
	// may read (files.charset, one a line like the dictionary: the
	// dictionary itself for every script the recognizer knows).
	p.params.Allow = ocr.LatinClasses(dict)
	if cs := man.Files["charset"]; cs != "" {
		chars, err := readDict(man.Path(cs))
		if err != nil {
			return nil, fmt.Errorf("charset: %w", err)
		}
		p.params.Allow = ocr.CharsetClasses(dict, chars)
		// rec is pruned to the Latin classes (the zoo's): a charset that
		// reaches past them is read with the multilingual recognizer the
		// model ships beside it.
		if multi := man.Files["rec_multilingual"]; multi != "" {
			if ok, _ := ocr.WithinLatinHead(dict, p.params.Allow); !ok {
				recFile = multi
			}
		}
	}
	for i := 0; i < instances; i++ {
		s, err := ort.Open(man.Path(recFile), opts)
		if err != nil {
			p.close()
			return nil, err
		}
		p.all = append(p.all, s)
		p.recs <- s
	}
	return p, nil
}

// readDict reads a character list (ocr.LoadDict) from a file.
func readDict(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ocr.LoadDict(f)
}

func (p *ocrPipeline) close() {
	for _, s := range p.all {
		_ = s.Close()
	}
}

func (p *ocrPipeline) prepare(in Input) (Sample, error) {
	if documents.Sniff(in.Data) != documents.NotDocument {
		// A whole document fans out into page jobs before it is prepared
		// (the worker's fanOut); only its pages are run.
		if n := pageOf(in.ContentType); n > 0 {
			return preparePage(in, n)
		}
		return nil, &InputError{Code: "invalid_input", Message: "a whole document reaches the model only as its pages"}
	}
	img, _, err := preprocess.DecodeImage(in.Data, p.man.Preprocess.MaxPixels)
	if err != nil {
		return nil, inputError(err)
	}
	return img, nil
}

// run reads each page in turn: pages differ in size, so detection runs
// per page; recognition batches the lines of a page.
func (p *ocrPipeline) run(det *ort.Session, batch []Sample) ([]Outcome, error) {
	rec := <-p.recs
	defer func() { p.recs <- rec }()
	out := make([]Outcome, len(batch))
	for i, s := range batch {
		if pg, ok := s.(*pageSample); ok {
			out[i] = p.readPage(pg, det, rec)
			continue
		}
		res, err := ocr.Recognize(s.(image.Image), det, rec, p.dict, p.params)
		if err != nil {
			if len(batch) == 1 {
				return nil, err
			}
			out[i].Err = err
			continue
		}
		out[i].Result, _ = json.Marshal(res)
	}
	return out, nil
}
