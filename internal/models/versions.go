package models

import (
	"fmt"

	"github.com/inferq/inferq/internal/models/catalog"
)

// supersede puts next in cur's place: cur is retired, unless next comes
// with a rollout, which still routes jobs to the version before it.
func (r *Registry) supersede(cur, next *Model) {
	if cur == nil {
		return
	}
	if next.Manifest.Rollout == nil {
		cur.retire()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keep(cur)
}

// keep files m among the extra versions (r.mu held).
func (r *Registry) keep(m *Model) {
	if r.extra == nil {
		r.extra = map[string]map[string]*Model{}
	}
	name := m.Manifest.Name
	if r.extra[name] == nil {
		r.extra[name] = map[string]*Model{}
	}
	if old := r.extra[name][m.Manifest.Version]; old != nil && old != m {
		old.retire()
	}
	r.extra[name][m.Manifest.Version] = m
}

// AcquireVersion is Acquire for one version of a model: the newest, or
// another that a rollout routes jobs to, loaded from the models directory
// the first time it is asked for and kept until Retain lets it go.
func (r *Registry) AcquireVersion(name, version string) (*Model, func(), error) {
	if m, release, ok := r.acquireLoaded(name, version); ok {
		return m, release, nil
	}
	if len(r.only) > 0 && !contains(r.only, name) {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownModel, name)
	}
	man, err := catalog.Version(r.dir, name, version)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s version %s: %v", ErrUnknownModel, name, version, err)
	}
	m, err := load(man, r.opts, r.inst)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s version %s: %w", name, version, err)
	}
	r.mu.Lock()
	if cur := r.models[name]; cur != nil && cur.Manifest.Version == version {
		m.retire() // the newest became this version meanwhile
	} else if r.extra[name][version] == nil {
		r.keep(m)
		if r.log != nil {
			r.log.Info("model version loaded for a rollout", "model", name, "version", version)
		}
	} else {
		m.retire()
	}
	r.mu.Unlock()
	if m, release, ok := r.acquireLoaded(name, version); ok {
		return m, release, nil
	}
	return nil, nil, fmt.Errorf("%w: %s version %s", ErrUnknownModel, name, version)
}

func (r *Registry) acquireLoaded(name, version string) (*Model, func(), bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[name]
	if m == nil || m.Manifest.Version != version {
		m = r.extra[name][version]
	}
	if m == nil {
		return nil, nil, false
	}
	m.mu.Lock()
	m.refs++
	m.mu.Unlock()
	return m, m.release, true
}

// Retain unloads the model's extra versions other than keep, each once its
// batches are done: what bounds a worker's memory after a rollout ends.
func (r *Registry) Retain(name string, keep ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for v, m := range r.extra[name] {
		if !contains(keep, v) {
			delete(r.extra[name], v)
			m.retire()
			if r.log != nil {
				r.log.Info("model version unloaded", "model", name, "version", v)
			}
		}
	}
}

// Versions lists the loaded versions of a model, the newest first.
func (r *Registry) Versions(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if m := r.models[name]; m != nil {
		out = append(out, m.Manifest.Version)
	}
	for v := range r.extra[name] {
		out = append(out, v)
	}
	return out
}

// Dir is the models directory the registry reads.
func (r *Registry) Dir() string { return r.dir }
