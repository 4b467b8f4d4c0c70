// Package fleettest starts the real parts of an inferq fleet for tests, the
// demo and the benchmark harness: NATS, Redis and MinIO on free loopback
// ports with their own data directories, and the fleet's own processes.
// Nothing here is a mock; everything it starts it also stops.
package fleettest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	rootOnce sync.Once
	root     string
)

// RepoRoot is the directory holding go.mod, found by walking up from the
// working directory (go test runs in the package's directory).
func RepoRoot() string {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return
			}
			dir = parent
		}
	})
	return root
}

// CacheDir is the git-ignored folder that `make deps` fills.
func CacheDir() string {
	if d := os.Getenv("INFERQ_CACHE"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".cache")
}

// ORTLib is the ONNX Runtime shared library: INFERQ_ORT_LIB, else the one
// `make deps` unpacked.
func ORTLib() (string, error) {
	p := os.Getenv("INFERQ_ORT_LIB")
	if p == "" {
		p = filepath.Join(CacheDir(), "ort", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("ONNX Runtime library not found at %s: run `make deps` (it unpacks libonnxruntime.so.1 from the npm package onnxruntime-node)", p)
	}
	return p, nil
}

// ModelsDir is the built-in models directory that `make deps` builds.
func ModelsDir() string {
	if d := os.Getenv("INFERQ_MODELS_DIR"); d != "" {
		return d
	}
	return filepath.Join(CacheDir(), "models")
}

// Binary finds a server binary: the cache's bin folder first (pinned builds
// from `make deps`), then PATH.
func Binary(name string) (string, error) {
	p := filepath.Join(CacheDir(), "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or PATH: run `make deps`", name, filepath.Join(CacheDir(), "bin"))
}
