package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

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
	// extra holds versions other than the newest that a rollout still
	// routes jobs to (versions.go).
	extra map[string]map[string]*Model
}

// Open loads the models of dir (only those named, if any) with instances
// sessions each on opts' device, and returns once all are loaded.
func Open(dir string, only []string, opts ort.Options, instances int, log *slog.Logger) (*Registry, error) {
	r, loaded, done, err := OpenEach(dir, only, opts, instances, log)
	if err != nil {
		return nil, err
	}
	for range loaded {
	}
	if err := <-done; err != nil {
		// A worker told which models to serve must serve them all; one
		// serving "everything in the directory" serves what loads and says
		// what did not.
		if len(only) > 0 || log == nil {
			r.Close()
			return nil, err
		}
		log.Error("some models could not be loaded and are not served", "err", err)
	}
	if len(r.Names()) == 0 {
		return nil, fmt.Errorf("no models to serve in %s", dir)
	}
	return r, nil
}

// OpenEach is Open for a worker that serves each model from the moment
// its sessions are open, rather than every model after the slowest: it
// reads the manifests, returns a registry with no model loaded yet, and
// loads them in the background, smallest graph first, sending each name
// on loaded once it can be acquired. Then it sends what failed to load
// (nil: nothing) on done, and closes both.
func OpenEach(dir string, only []string, opts ort.Options, instances int, log *slog.Logger) (r *Registry, loaded <-chan string, done <-chan error, err error) {
	cat, err := catalog.Catalog(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, name := range only {
		if cat[name] == nil {
			return nil, nil, nil, fmt.Errorf("model %s: %w in %s", name, ErrUnknownModel, dir)
		}
	}
	var mans []*catalog.Manifest
	for name, man := range cat {
		if len(only) == 0 || contains(only, name) {
			mans = append(mans, man)
		}
	}
	if len(mans) == 0 {
		return nil, nil, nil, fmt.Errorf("no models to serve in %s", dir)
	}
	size := func(m *catalog.Manifest) int64 {
		fi, err := os.Stat(m.Path(cmp.Or(m.File, "model.onnx")))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	sort.Slice(mans, func(i, j int) bool { return size(mans[i]) < size(mans[j]) })
	r = &Registry{dir: dir, only: only, opts: opts, inst: instances, log: log, models: map[string]*Model{}}
	ld, dn := make(chan string, len(mans)), make(chan error, 1)
	go func() {
		var errs []error
		for _, man := range mans {
			m, err := load(man, opts, instances)
			if err != nil {
				errs = append(errs, fmt.Errorf("model %s version %s: %w", man.Name, man.Version, err))
				continue
			}
			r.mu.Lock()
			r.models[man.Name] = m
			r.mu.Unlock()
			if log != nil {
				log.Info("model loaded", "model", man.Name, "version", man.Version, "device", opts.Device.String(), "instances", instances)
			}
			ld <- man.Name
		}
		close(ld)
		dn <- errors.Join(errs...)
		close(dn)
		// Then pdfium, when a model reads documents: compiling it takes
		// seconds, which the first PDF would otherwise spend holding up
		// every job of its model.
		if slices.ContainsFunc(mans, readsDocuments) {
			start := time.Now()
			if err := docOpener().Warm(context.Background()); err != nil {
				if log != nil {
					log.Warn("document reader not readied; the first PDF readies it", "err", err)
				}
			} else if log != nil {
				log.Info("document reader ready", "took", time.Since(start).Round(time.Millisecond))
			}
		}
	}()
	return r, ld, dn, nil
}

// Refresh loads versions of the served models newer than those served and
// returns the names of the models that changed. A version that fails to
// load leaves the one served in place. Models added to the directory after
// Open are served from the next start.
func (r *Registry) Refresh() ([]string, error) {
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
		if cur == nil || cur.Manifest.Version == man.Version {
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
		r.supersede(cur, m)
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
	ms, extra := r.models, r.extra
	r.models, r.extra = map[string]*Model{}, nil
	r.mu.Unlock()
	for _, m := range ms {
		m.retire()
	}
	for _, vs := range extra {
		for _, m := range vs {
			m.retire()
		}
	}
}
