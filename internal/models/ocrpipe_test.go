package models

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/ort"
	"github.com/inferq/inferq/internal/pages"
)

// TestOCRCharset: an ocr model reads Latin text unless its manifest names
// files.charset, and then reads only the characters listed there; a
// charset past the Latin classes (here the whole dictionary, every script)
// is read with the multilingual recognizer the model ships beside its
// Latin-pruned one.
func TestOCRCharset(t *testing.T) {
	builtins(t) // ONNX Runtime loaded, the built-in models present
	src := filepath.Join(fleettest.ModelsDir(), "ocr", "1")
	man, err := os.ReadFile(filepath.Join(src, "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ver := filepath.Join(dir, "ocr", "1")
	if err := os.MkdirAll(ver, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"det.onnx", "rec.onnx", "rec-multilingual.onnx", "ppocr_keys_v1.txt"} {
		if err := os.Symlink(filepath.Join(src, f), filepath.Join(ver, f)); err != nil {
			t.Fatal(err)
		}
	}
	// Digits alone: a charset of ten lines.
	digits := strings.Join(strings.Split("0123456789", ""), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(ver, "digits.txt"), []byte(digits), 0o644); err != nil {
		t.Fatal(err)
	}
	withCharset := strings.Replace(string(man), "files:\n", "files:\n    charset: digits.txt\n", 1)
	if err := os.WriteFile(filepath.Join(ver, "manifest.yaml"), []byte(withCharset), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := Open(dir, []string{"ocr"}, ort.Options{IntraOpThreads: 1}, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	page, err := pages.PNG(pages.Regular, 28, pages.Lines[0][:1]) // "Invoice 2041 total 318.50 EUR"
	if err != nil {
		t.Fatal(err)
	}
	read := func(reg *Registry) string {
		t.Helper()
		m, release, err := reg.Acquire("ocr")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		s, err := m.Prepare(Input{Data: page, ContentType: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Run([]Sample{s})
		if err != nil || out[0].Err != nil {
			t.Fatal(err, out[0].Err)
		}
		var r struct{ Text string }
		if err := json.Unmarshal(out[0].Result, &r); err != nil {
			t.Fatal(err)
		}
		return r.Text
	}
	if got := read(builtins(t)); got != "Invoice 2041 total 318.50 EUR" {
		t.Errorf("built-in ocr (Latin): %q", got)
	}
	got := read(reg)
	if strings.Trim(got, "0123456789 ") != "" || !strings.Contains(got, "2041") {
		t.Errorf("ocr with a digits charset read %q: want digits and spaces only, 2041 among them", got)
	}
	every := strings.Replace(string(man), "files:\n", "files:\n    charset: ppocr_keys_v1.txt\n", 1)
	if err := os.WriteFile(filepath.Join(ver, "manifest.yaml"), []byte(every), 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := Open(dir, []string{"ocr"}, ort.Options{IntraOpThreads: 1}, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if got := read(all); !strings.Contains(got, "2041") || !strings.Contains(got, "318") {
		t.Errorf("ocr reading every script read %q", got)
	}
}
