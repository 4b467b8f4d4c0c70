// Package zoo makes inferq's built-in models: it writes each one's ONNX
// graph (with onnxpb), its manifest and its extra files into
// <models dir>/<name>/<version>/, atomically, and skips a model that is
// already there and unchanged, so that a second `make deps` is instant.
//
// The built-ins are echo (the overhead probe), digits (an MLP trained here,
// deterministically, on the UCI optical digits data in data/), resnet18 and
// resnet50 (the standard architectures with seeded, untrained weights), and
// ocr (PaddleOCR's PP-OCRv4 graphs, copied in from the setup cache).
package zoo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/models/onnxpb"
)

// Version is the version directory every built-in model is written to.
const Version = "1"

// stampFile records, next to a built model, the recipe that made it and
// the hashes of the files it wrote; a later build with the same recipe and
// untouched files is skipped. The leading dot keeps it out of the way of
// anything that lists model files.
const stampFile = ".zoo-stamp.json"

// ErrUnknownModel is returned for a name that is not a built-in model.
var ErrUnknownModel = errors.New("unknown built-in model")

// Names lists the built-in models that Build makes from nothing (ocr needs
// source files and is made by BuildOCR).
func Names() []string { return []string{"echo", "digits", "resnet18", "resnet50"} }

// Result says what building one model did.
type Result struct {
	Name    string
	Dir     string // <outDir>/<name>/<version>
	Skipped bool   // already there with the same recipe and content
	Bytes   int64  // size of the files written (or found)
	Elapsed time.Duration
}

// Build writes the named built-in models (all of Names when none are
// given) under outDir.
func Build(outDir string, names ...string) error {
	if len(names) == 0 {
		names = Names()
	}
	for _, name := range names {
		if _, err := BuildModel(outDir, name); err != nil {
			return err
		}
	}
	return nil
}

// BuildModel writes one built-in model under outDir and reports what it
// did.
func BuildModel(outDir, name string) (Result, error) {
	r, ok := recipes[name]
	if !ok {
		return Result{}, fmt.Errorf("%w %q (have %s)", ErrUnknownModel, name, strings.Join(Names(), ", "))
	}
	return write(outDir, name, r.key(), r.make)
}

// recipe makes one model; key identifies what it makes, and changes when
// the generator or its inputs change.
type recipe struct {
	key  func() string
	make func() (*bundle, error)
}

var recipes = map[string]recipe{
	"digits":   {key: digitsKey, make: digitsBundle},
	"echo":     {key: func() string { return "echo/1" }, make: echoBundle},
	"resnet18": {key: func() string { return fmt.Sprintf("resnet18/1/seed=%d", resnetSeed) }, make: func() (*bundle, error) { return resnetBundle(18) }},
	"resnet50": {key: func() string { return fmt.Sprintf("resnet50/1/seed=%d", resnetSeed) }, make: func() (*bundle, error) { return resnetBundle(50) }},
}

// bundle is everything one model version directory holds.
type bundle struct {
	manifest catalog.Manifest
	model    *onnxpb.Model     // written as manifest.File
	files    map[string][]byte // more files, by name
	links    map[string]string // files hard-linked (or copied) in: name -> source path
}

type stamp struct {
	Recipe string            `json:"recipe"`
	Files  map[string]string `json:"files"` // name -> sha256
}

// write builds the model version directory unless an identical one is
// already there: into a temporary sibling first, then renamed into place,
// so a reader never sees half a model.
func write(outDir, name, key string, mk func() (*bundle, error)) (Result, error) {
	start := time.Now()
	modelDir := filepath.Join(outDir, name)
	final := filepath.Join(modelDir, Version)
	res := Result{Name: name, Dir: final}
	if n, ok := upToDate(final, key); ok {
		res.Skipped, res.Bytes, res.Elapsed = true, n, time.Since(start)
		return res, nil
	}
	b, err := mk()
	if err != nil {
		return res, fmt.Errorf("make %s: %w", name, err)
	}
	b.manifest.Name, b.manifest.Version = name, Version
	if b.manifest.File == "" {
		b.manifest.File = "model.onnx"
	}
	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		return res, err
	}
	tmp, err := os.MkdirTemp(modelDir, ".tmp-"+Version+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return res, err
	}
	if b.model != nil {
		if err := b.model.WriteFile(filepath.Join(tmp, b.manifest.File)); err != nil {
			return res, fmt.Errorf("write %s: %w", name, err)
		}
	}
	for fn, data := range b.files {
		if err := os.WriteFile(filepath.Join(tmp, fn), data, 0o644); err != nil {
			return res, err
		}
	}
	for fn, src := range b.links {
		if err := linkOrCopy(src, filepath.Join(tmp, fn)); err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
	}
	mb, err := yaml.Marshal(&b.manifest)
	if err != nil {
		return res, err
	}
	mb = append([]byte("# Written by inferq's model zoo (cmd/modelzoo); rebuilt, not edited.\n"), mb...)
	if err := os.WriteFile(filepath.Join(tmp, catalog.ManifestFile), mb, 0o644); err != nil {
		return res, err
	}
	if _, err := catalog.LoadManifest(tmp); err != nil {
		return res, fmt.Errorf("%s: the manifest written does not load: %w", name, err)
	}
	st := stamp{Recipe: key, Files: map[string]string{}}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		sum, n, err := hashFile(filepath.Join(tmp, e.Name()))
		if err != nil {
			return res, err
		}
		st.Files[e.Name()] = sum
		res.Bytes += n
	}
	sb, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, stampFile), append(sb, '\n'), 0o644); err != nil {
		return res, err
	}
	if err := replaceDir(tmp, final); err != nil {
		return res, fmt.Errorf("install %s: %w", name, err)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// upToDate reports whether dir holds what the recipe key makes, untouched
// since: the stamp names the key, and every file it lists, and only those,
// still has its hash.
func upToDate(dir, key string) (int64, bool) {
	sb, err := os.ReadFile(filepath.Join(dir, stampFile))
	if err != nil {
		return 0, false
	}
	var st stamp
	if json.Unmarshal(sb, &st) != nil || st.Recipe != key || len(st.Files) == 0 {
		return 0, false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	var names []string
	for _, e := range entries {
		if e.Name() != stampFile {
			names = append(names, e.Name())
		}
	}
	if len(names) != len(st.Files) {
		return 0, false
	}
	var total int64
	for _, fn := range names {
		want, ok := st.Files[fn]
		if !ok {
			return 0, false
		}
		sum, n, err := hashFile(filepath.Join(dir, fn))
		if err != nil || sum != want {
			return 0, false
		}
		total += n
	}
	return total, true
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// replaceDir moves tmp to final, setting aside (then removing) whatever was
// at final; rename is atomic within one filesystem, and tmp is final's
// sibling. Both transient names start with a dot, which no valid version
// name does, so a registry scanning the model's directory skips them.
func replaceDir(tmp, final string) error {
	var old string
	if _, err := os.Lstat(final); err == nil {
		old = filepath.Join(filepath.Dir(final), ".old"+filepath.Base(tmp))
		if err := os.Rename(final, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if old != "" {
			_ = os.Rename(old, final)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// linkOrCopy hard-links src to dst (the cache and the models dir usually
// share a filesystem), copying when it cannot.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// ioSpec turns a declared graph edge into the manifest's form.
func ioSpec(v onnxpb.ValueInfo) catalog.IOSpec {
	return catalog.IOSpec{Name: v.Name, DType: v.DType.String(), Shape: onnxpb.Dims(v.Shape)}
}

func ioSpecs(vs []onnxpb.ValueInfo) []catalog.IOSpec {
	out := make([]catalog.IOSpec, len(vs))
	for i, v := range vs {
		out[i] = ioSpec(v)
	}
	return out
}
