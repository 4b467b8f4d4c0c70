package models

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/inferq/inferq/internal/ort"
)

// ErrUnknownModel is a model the registry does not serve.
var ErrUnknownModel = errors.New("unknown model")

// Catalog reads the newest version of every model under dir, without
// opening any session: what the producer needs to accept or refuse jobs
// and to list models.
func Catalog(dir string) (map[string]*Manifest, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("models dir: %w", err)
	}
	out := map[string]*Manifest{}
	for _, e := range entries {
		if !e.IsDir() || !ValidName(e.Name()) {
			continue
		}
		m, err := Latest(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if m != nil {
			out[m.Name] = m
		}
	}
	return out, nil
}

// Latest reads the newest version under a model's directory, or nil when
// it has none. Versions compare as numbers when both are numbers, else as
// strings.
func Latest(modelDir string) (*Manifest, error) {
	entries, err := os.ReadDir(modelDir)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", modelDir, err)
	}
	var versions []string
	for _, e := range entries {
		if e.IsDir() && ValidName(e.Name()) {
			if _, err := os.Stat(filepath.Join(modelDir, e.Name(), ManifestFile)); err == nil {
				versions = append(versions, e.Name())
			}
		}
	}
	if len(versions) == 0 {
		return nil, nil
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	v := versions[len(versions)-1]
	m, err := LoadManifest(filepath.Join(modelDir, v))
	if err != nil {
		return nil, err
	}
	if want := filepath.Base(modelDir); m.Name != want {
		return nil, fmt.Errorf("model %s: manifest names %q", modelDir, m.Name)
	}
	if m.Version != v {
		return nil, fmt.Errorf("model %s: version directory %s holds version %q", modelDir, v, m.Version)
	}
	return m, nil
}

func versionLess(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

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
	cat, err := Catalog(r.dir)
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
