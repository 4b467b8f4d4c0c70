package models

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"sync"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/ort"
	"github.com/inferq/inferq/internal/pages"
)

var (
	builtinOnce sync.Once
	builtin     *Registry
	builtinErr  error
)

// builtins opens the models `make deps` built, once per test binary.
func builtins(tb testing.TB) *Registry {
	tb.Helper()
	builtinOnce.Do(func() {
		lib, err := fleettest.ORTLib()
		if err != nil {
			builtinErr = err
			return
		}
		if builtinErr = ort.Init(lib); builtinErr != nil {
			return
		}
		builtin, builtinErr = Open(fleettest.ModelsDir(), []string{"echo", "digits", "resnet18", "resnet50", "ocr"}, ort.Options{}, 1, slog.New(slog.DiscardHandler))
	})
	if builtinErr != nil {
		tb.Fatalf("built-in models: %v (run `make deps`)", builtinErr)
	}
	return builtin
}

// photo is a 640x480 synthetic photo-like PNG.
func photo(tb testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / 640), uint8(y * 255 / 480), uint8((x + y) % 256), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// BenchmarkSingleImage is one job's model time on this machine: decode,
// preprocess, one inference run of batch 1, postprocess.
//
//	go test -run '^$' -bench SingleImage -benchtime 20x ./internal/models/
func BenchmarkSingleImage(b *testing.B) {
	reg := builtins(b)
	page, err := pages.PNG(pages.Regular, 28, pages.Lines[0])
	if err != nil {
		b.Fatal(err)
	}
	inputs := map[string]Input{
		"echo":     {Data: []byte("hello, inferq"), ContentType: "text/plain"},
		"digits":   {Data: photo(b), ContentType: "image/png"},
		"resnet18": {Data: photo(b), ContentType: "image/png"},
		"resnet50": {Data: photo(b), ContentType: "image/png"},
		"ocr":      {Data: page, ContentType: "image/png"},
	}
	for _, name := range []string{"echo", "digits", "resnet18", "resnet50", "ocr"} {
		b.Run(name, func(b *testing.B) {
			m, release, err := reg.Acquire(name)
			if err != nil {
				b.Fatal(err)
			}
			defer release()
			for i := 0; i < b.N; i++ {
				s, err := m.Prepare(inputs[name])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.Run([]Sample{s}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBuiltinModelsAnswer checks each built-in model answers one input.
func TestBuiltinModelsAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ONNX Runtime and the built models; skipped in -short mode")
	}
	reg := builtins(t)
	for _, name := range []string{"echo", "digits", "resnet18", "ocr"} {
		m, release, err := reg.Acquire(name)
		if err != nil {
			t.Fatal(err)
		}
		in := Input{Data: photo(t), ContentType: "image/png"}
		s, err := m.Prepare(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := m.Run([]Sample{s, s})
		release()
		if err != nil || len(out) != 2 || out[0].Err != nil || len(out[0].Result) == 0 || string(out[0].Result) != string(out[1].Result) {
			t.Fatalf("%s: %v %+v", name, err, out)
		}
	}
}
