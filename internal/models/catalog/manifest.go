// Package catalog reads inferq's model directories without running them:
// manifests, versions, and the mirror of a models directory kept in S3.
// The producer lists and checks models with it; the registry in package
// models loads what it finds. It needs no cgo.
package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ManifestFile is the name of a model version's manifest.
const ManifestFile = "manifest.yaml"

// Manifest describes one version of a model: what it takes, how an upload
// becomes its input tensor, how its output becomes an answer, and how many
// inputs one run may batch. It lives next to the ONNX file(s) in
// <models dir>/<name>/<version>/manifest.yaml.
type Manifest struct {
	Name        string `yaml:"name" json:"name"`
	Version     string `yaml:"version" json:"version"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// File is the ONNX graph, relative to the manifest (default model.onnx).
	File    string   `yaml:"file,omitempty" json:"-"`
	Inputs  []IOSpec `yaml:"inputs" json:"inputs"`
	Outputs []IOSpec `yaml:"outputs" json:"outputs"`
	// ContentTypes the model accepts for uploads; "*/*" or empty accepts
	// anything the preprocessing can read.
	ContentTypes []string    `yaml:"content_types,omitempty" json:"content_types,omitempty"`
	Preprocess   Preprocess  `yaml:"preprocess" json:"preprocess"`
	Postprocess  Postprocess `yaml:"postprocess" json:"postprocess"`
	MaxBatch     int         `yaml:"max_batch" json:"max_batch"`
	// MaxWaitMS caps how long a partial batch may wait for company.
	MaxWaitMS int `yaml:"max_wait_ms,omitempty" json:"max_wait_ms,omitempty"`
	// Files are extra files by role (labels, dictionaries, second graphs),
	// relative to the manifest.
	Files map[string]string `yaml:"files,omitempty" json:"-"`
	// Rollout, when set, serves this version to a share of the model's
	// jobs beside the one before it until it is judged (package rollout
	// reads and checks it); without it a new version replaces the old.
	Rollout map[string]string `yaml:"rollout,omitempty" json:"-"`

	dir string
}

// IOSpec is one input or output tensor; -1 marks a dynamic dimension (the
// first is the batch).
type IOSpec struct {
	Name  string  `yaml:"name" json:"name"`
	DType string  `yaml:"dtype" json:"dtype"`
	Shape []int64 `yaml:"shape" json:"shape"`
}

// Preprocess declares how an upload becomes one sample of the input tensor.
type Preprocess struct {
	// Kind is "bytes" (raw bytes as uint8, zero-padded to the batch's
	// longest, at most MaxLen), "image", "tensor" (JSON or .npy) or "ocr"
	// (the OCR pipeline reads the page itself).
	Kind   string `yaml:"kind" json:"kind"`
	MaxLen int    `yaml:"max_len,omitempty" json:"max_len,omitempty"`
	// Image fields, used when Kind is "image".
	Width    int       `yaml:"width,omitempty" json:"width,omitempty"`
	Height   int       `yaml:"height,omitempty" json:"height,omitempty"`
	Resize   string    `yaml:"resize,omitempty" json:"resize,omitempty"`
	Color    string    `yaml:"color,omitempty" json:"color,omitempty"`
	Layout   string    `yaml:"layout,omitempty" json:"layout,omitempty"`
	Scale    float32   `yaml:"scale,omitempty" json:"scale,omitempty"`
	Mean     []float32 `yaml:"mean,omitempty" json:"mean,omitempty"`
	Std      []float32 `yaml:"std,omitempty" json:"std,omitempty"`
	PadValue float32   `yaml:"pad_value,omitempty" json:"pad_value,omitempty"`
	Invert   string    `yaml:"invert,omitempty" json:"invert,omitempty"`
	// MaxPixels caps a decoded image (0: the preprocessing default, 16.7 MP).
	MaxPixels int64 `yaml:"max_pixels,omitempty" json:"max_pixels,omitempty"`
}

// Postprocess declares how the output tensor becomes a result.
type Postprocess struct {
	// Kind is "echo" ({"bytes","sha256"}), "topk" (softmax top-k with the
	// "labels" file), "raw" (the tensors) or "ocr".
	Kind    string `yaml:"kind" json:"kind"`
	TopK    int    `yaml:"top_k,omitempty" json:"top_k,omitempty"`
	Softmax bool   `yaml:"softmax,omitempty" json:"softmax,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidName reports whether s can name a model or a version: lower-case
// letters, digits, '-' and '_', as NATS subjects and S3 keys take them.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// LoadManifest reads and checks the manifest in dir.
func LoadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dir, err)
	}
	m.dir = dir
	if m.File == "" {
		m.File = "model.onnx"
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dir, err)
	}
	return &m, nil
}

// Dir is the directory the manifest was read from.
func (m *Manifest) Dir() string { return m.dir }

// Path resolves a file named in the manifest against its directory.
func (m *Manifest) Path(rel string) string { return filepath.Join(m.dir, rel) }

// Validate checks the manifest's own consistency.
func (m *Manifest) Validate() error {
	if !ValidName(m.Name) {
		return fmt.Errorf("name %q: want lower-case letters, digits, - and _", m.Name)
	}
	if !ValidName(m.Version) {
		return fmt.Errorf("version %q: want lower-case letters, digits, - and _", m.Version)
	}
	if m.MaxBatch < 1 {
		return errors.New("max_batch must be at least 1")
	}
	switch m.Preprocess.Kind {
	case "bytes", "image", "tensor", "ocr":
	default:
		return fmt.Errorf("preprocess.kind %q: want bytes, image, tensor or ocr", m.Preprocess.Kind)
	}
	switch m.Postprocess.Kind {
	case "echo", "topk", "raw", "ocr":
	default:
		return fmt.Errorf("postprocess.kind %q: want echo, topk, raw or ocr", m.Postprocess.Kind)
	}
	return nil
}

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

// Version reads one version of a model under dir, checking that it is
// what its directory says.
func Version(dir, name, version string) (*Manifest, error) {
	if !ValidName(name) || !ValidName(version) {
		return nil, fmt.Errorf("model %q version %q: bad name", name, version)
	}
	m, err := LoadManifest(filepath.Join(dir, name, version))
	if err != nil {
		return nil, err
	}
	if m.Name != name || m.Version != version {
		return nil, fmt.Errorf("model %s version %s: manifest names %s version %s", name, version, m.Name, m.Version)
	}
	return m, nil
}

// Previous is the newest version of a model under dir older than version
// ("" when there is none): the version a rollout of version starts from.
func Previous(dir, name, version string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("model %s: %w", name, err)
	}
	prev := ""
	for _, e := range entries {
		v := e.Name()
		if !e.IsDir() || !ValidName(v) || !versionLess(v, version) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, name, v, ManifestFile)); err == nil && (prev == "" || versionLess(prev, v)) {
			prev = v
		}
	}
	return prev, nil
}
