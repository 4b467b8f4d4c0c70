package models

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/ort"
)

// ErrUnknownModel is a model the registry does not serve.
var ErrUnknownModel = errors.New("unknown model")

// Registry holds the models a worker serves, each at its newest version,
// with ONNX Runtime sessions open. A new version found by Refresh replaces
// the old for new batches; batches already holding the old one finish on
// it, and it closes when the last lets go.
type Registry struct {
	dir    string
	only   []string
	opts   ort.Options
	inst   int
	log    *slog.Logger
	mu     sync.Mutex
	models map[string]*Model
}

// Open loads the models of dir (only those named, if any) with instances
// sessions each on opts' device.
func Open(dir string, only []string, opts ort.Options, instances int, log *slog.Logger) (*Registry, error) {
	r := &Registry{dir: dir, only: only, opts: opts, inst: instances, log: log, models: map[string]*Model{}}
	if _, err := r.refresh(true); err != nil {
		// A worker told which models to serve must serve them all; one
		// serving "everything in the directory" serves what loads and says
		// what did not.
		if len(only) > 0 || log == nil {
			r.Close()
			return nil, err
		}
		log.Error("some models could not be loaded and are not served", "err", err)
	}
	if len(r.models) == 0 {
		return nil, fmt.Errorf("no models to serve in %s", dir)
	}
	for _, name := range only {
		if r.models[name] == nil {
			r.Close()
			return nil, fmt.Errorf("model %s: %w in %s", name, ErrUnknownModel, dir)
		}
	}
	return r, nil
}

// Refresh loads versions of the served models newer than those served and
// returns the names of the models that changed. A version that fails to
// load leaves the one served in place. Models added to the directory after
// Open are served from the next start.
func (r *Registry) Refresh() ([]string, error) { return r.refresh(false) }

func (r *Registry) refresh(initial bool) ([]string, error) {
	cat, err := catalog.Catalog(r.dir)
	if err != nil {
		return nil, err
	}
	var changed []string
	var errs []error
	for name, man := range cat {
		if len(r.only) > 0 && !contains(r.only, name) {
			continue
		}
		r.mu.Lock()
		cur := r.models[name]
		r.mu.Unlock()
		if (cur == nil && !initial) || (cur != nil && cur.Manifest.Version == man.Version) {
			continue
		}
		m, err := load(man, r.opts, r.inst)
		if err != nil {
			errs = append(errs, fmt.Errorf("model %s version %s: %w", name, man.Version, err))
			continue
		}
		r.mu.Lock()
		r.models[name] = m
		r.mu.Unlock()
		if cur != nil {
			cur.retire()
		}
		changed = append(changed, name)
		if r.log != nil {
			r.log.Info("model loaded", "model", name, "version", man.Version, "device", r.opts.Device.String(), "instances", r.inst)
		}
	}
	sort.Strings(changed)
	return changed, errors.Join(errs...)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// Names lists the models served, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.models))
	for n := range r.models {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Acquire returns the current version of a model and holds it open until
// release is called.
func (r *Registry) Acquire(name string) (*Model, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[name]
	if m == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownModel, name)
	}
	m.mu.Lock()
	m.refs++
	m.mu.Unlock()
	return m, m.release, nil
}

// Close closes every model once its batches are done.
func (r *Registry) Close() {
	r.mu.Lock()
	ms := r.models
	r.models = map[string]*Model{}
	r.mu.Unlock()
	for _, m := range ms {
		m.retire()
	}
}
