package models

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/ort"
)

// copyVersion copies the built-in echo model's version 1 into dir as
// version v, with extra appended to its manifest.
func copyVersion(t *testing.T, dir, v, extra string) {
	t.Helper()
	src := filepath.Join(fleettest.ModelsDir(), "echo", "1")
	dst := filepath.Join(dir, "echo", v)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "manifest.yaml" {
			b = []byte(strings.Replace(string(b), `version: "1"`, `version: "`+v+`"`, 1) + extra)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRolloutVersions: a new version declared with a rollout keeps the
// one before it loaded beside it; an older version is loaded on demand;
// Retain unloads what no rollout routes to any more.
func TestRolloutVersions(t *testing.T) {
	builtins(t) // ORT initialised
	dir := t.TempDir()
	copyVersion(t, dir, "1", "")
	r, err := Open(dir, nil, ort.Options{}, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	copyVersion(t, dir, "2", "rollout: {canary: 10%, for: 1m}\n")
	if _, err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if got := r.Versions("echo"); !slices.Equal(got, []string{"2", "1"}) {
		t.Fatalf("versions after a rollout's version: %v, want [2 1]", got)
	}
	m, release, err := r.AcquireVersion("echo", "1")
	if err != nil || m.Manifest.Version != "1" {
		t.Fatalf("acquire version 1: %v", err)
	}
	release()
	r.Retain("echo")
	if got := r.Versions("echo"); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("versions after Retain: %v, want [2]", got)
	}
	// A rollback routes to version 1 again: loaded from disk on demand.
	if m, release, err = r.AcquireVersion("echo", "1"); err != nil || m.Manifest.Version != "1" {
		t.Fatalf("acquire version 1 again: %v", err)
	}
	release()
	if _, _, err := r.AcquireVersion("echo", "../1"); err == nil {
		t.Fatal("a version outside the model's directory was loaded")
	}
	// A version without a rollout replaces the others, as before.
	copyVersion(t, dir, "3", "")
	r.Retain("echo")
	if _, err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if got := r.Versions("echo"); !slices.Equal(got, []string{"3"}) {
		t.Fatalf("versions after a plain new version: %v, want [3]", got)
	}
}
