package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/inferq/inferq/internal/models/catalog"
	"sync"

	"github.com/inferq/inferq/internal/ort"
)

// InputError is an input that can never be run: the job fails at once with
// Code, and the rest of its batch goes on.
type InputError struct {
	Code    string
	Message string
}

func (e *InputError) Error() string { return e.Code + ": " + e.Message }

// Input is one job's upload.
type Input struct {
	Data        []byte
	ContentType string
}

// Sample is one input made ready for its model by Prepare.
type Sample interface{}

// Outcome is one job's result: a JSON answer, or the reason it failed.
type Outcome struct {
	Result json.RawMessage
	Err    error
}

// pipeline is the part of a model that differs by kind: turning an input
// into a sample, and a batch of samples into outcomes on one session.
type pipeline interface {
	prepare(in Input) (Sample, error)
	run(s *ort.Session, batch []Sample) ([]Outcome, error)
}

// Model is one loaded version of a model, with its sessions.
type Model struct {
	Manifest *catalog.Manifest
	pipe     pipeline
	sessions chan *ort.Session
	all      []*ort.Session

	mu      sync.Mutex
	refs    int
	retired bool
}

func load(man *catalog.Manifest, opts ort.Options, instances int) (*Model, error) {
	m := &Model{Manifest: man, sessions: make(chan *ort.Session, instances)}
	var err error
	if m.pipe, err = newPipeline(man, opts, instances); err != nil {
		return nil, err
	}
	for i := 0; i < instances; i++ {
		s, err := ort.Open(man.Path(man.File), opts)
		if err != nil {
			m.close()
			return nil, err
		}
		m.all = append(m.all, s)
		m.sessions <- s
	}
	return m, nil
}

func newPipeline(man *catalog.Manifest, opts ort.Options, instances int) (pipeline, error) {
	switch man.Preprocess.Kind {
	case "ocr":
		return newOCRPipeline(man, opts, instances)
	case "bytes":
		if man.Postprocess.Kind != "echo" && man.Postprocess.Kind != "raw" {
			return nil, fmt.Errorf("preprocess bytes goes with postprocess echo or raw, not %s", man.Postprocess.Kind)
		}
		return &bytesPipeline{man: man}, nil
	}
	return newTensorPipeline(man, opts)
}

func (m *Model) release() {
	m.mu.Lock()
	m.refs--
	done := m.retired && m.refs == 0
	m.mu.Unlock()
	if done {
		m.close()
	}
}

func (m *Model) retire() {
	m.mu.Lock()
	m.retired = true
	done := m.refs == 0
	m.mu.Unlock()
	if done {
		m.close()
	}
}

func (m *Model) close() {
	for _, s := range m.all {
		_ = s.Close()
	}
	if c, ok := m.pipe.(interface{ close() }); ok {
		c.close()
	}
}

// Prepare turns one input into a sample; an *InputError means the input can
// never be run.
func (m *Model) Prepare(in Input) (s Sample, err error) {
	defer func() {
		// Decoders are fuzzed, but a panic on one hostile input must still
		// fail that job, not the worker.
		if p := recover(); p != nil {
			s, err = nil, &InputError{Code: "invalid_input", Message: fmt.Sprintf("input could not be read: %v", p)}
		}
	}()
	return m.pipe.prepare(in)
}

// Run runs a batch of samples in one session run and returns one outcome
// per sample. An error means the whole run failed (the caller may split
// the batch to find the input at fault).
func (m *Model) Run(batch []Sample) ([]Outcome, error) {
	s := <-m.sessions
	defer func() { m.sessions <- s }()
	out, err := m.pipe.run(s, batch)
	if err == nil && len(out) != len(batch) {
		err = fmt.Errorf("model %s returned %d outcomes for %d inputs", m.Manifest.Name, len(out), len(batch))
	}
	return out, err
}

// bytesPipeline feeds raw bytes as a uint8 [N, L] tensor, zero-padded to
// the longest in the batch: the echo model, which measures the fleet's
// own overhead.
type bytesPipeline struct{ man *catalog.Manifest }

type bytesSample struct {
	head   []byte
	size   int
	sha256 string
}

func (p *bytesPipeline) prepare(in Input) (Sample, error) {
	sum := sha256.Sum256(in.Data)
	head := in.Data
	if max := p.man.Preprocess.MaxLen; max > 0 && len(head) > max {
		head = head[:max]
	}
	return bytesSample{head: head, size: len(in.Data), sha256: hex.EncodeToString(sum[:])}, nil
}

func (p *bytesPipeline) run(s *ort.Session, batch []Sample) ([]Outcome, error) {
	width := 1
	for _, b := range batch {
		if n := len(b.(bytesSample).head); n > width {
			width = n
		}
	}
	data := make([]uint8, len(batch)*width)
	for i, b := range batch {
		copy(data[i*width:], b.(bytesSample).head)
	}
	outs, err := s.Run([]ort.Tensor{{Shape: []int64{int64(len(batch)), int64(width)}, DType: ort.Uint8, Uint8: data}})
	if err != nil {
		return nil, err
	}
	if p.man.Postprocess.Kind == "raw" {
		return rawOutcomes(s, outs, len(batch))
	}
	if len(outs) == 0 || len(outs[0].Float32) != len(batch) {
		return nil, errors.New("echo model: want one float32 per input")
	}
	res := make([]Outcome, len(batch))
	for i, b := range batch {
		bs := b.(bytesSample)
		res[i].Result, _ = json.Marshal(map[string]any{"bytes": bs.size, "sha256": bs.sha256, "sum": outs[0].Float32[i]})
	}
	return res, nil
}
