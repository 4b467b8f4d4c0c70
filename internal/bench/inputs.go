package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// inputSet is the inputs a model's load cycles through, as files the load
// generators read.
type inputSet struct {
	paths       []string
	contentType string
	size        int // bytes of one input (about)
}

// echoInputBytes is the size of an echo job's upload: small, so that the
// fleet's own cost per job dominates.
const echoInputBytes = 1024

// inputsFor writes (once) the inputs of model: 16 distinct uploads of the
// kind a client sends it: a 224x224 JPEG photo-like image for the
// ResNets, a 32x32 PNG of a digit for digits, 1 KiB of bytes for echo.
func (e *env) inputsFor(model string) (inputSet, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.inputs[model]; ok {
		return s, nil
	}
	dir := filepath.Join(e.dir, "inputs", model)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return inputSet{}, err
	}
	r := rand.New(rand.NewPCG(42, uint64(len(model))))
	var s inputSet
	for i := range 16 {
		var data []byte
		var ext string
		switch model {
		case "echo":
			data, ext, s.contentType = make([]byte, echoInputBytes), ".bin", "application/octet-stream"
			for j := range data {
				data[j] = byte(r.Uint32())
			}
		case "digits":
			data, ext, s.contentType = digitPNG(r, i%10), ".png", "image/png"
		default:
			data, ext, s.contentType = photoJPEG(r, 224, 224), ".jpg", "image/jpeg"
		}
		p := filepath.Join(dir, fmt.Sprintf("%02d%s", i, ext))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return inputSet{}, err
		}
		s.paths = append(s.paths, p)
		s.size = len(data)
	}
	e.inputs[model] = s
	return s, nil
}

// photoJPEG draws smooth gradients with noise: compresses like a photo.
func photoJPEG(r *rand.Rand, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	a, b, c := r.Float64()*255, r.Float64()*255, r.Float64()*255
	for y := range h {
		for x := range w {
			n := r.IntN(24)
			img.Set(x, y, color.RGBA{
				R: uint8(int(a+float64(x))%256*7/8 + n),
				G: uint8(int(b+float64(y))%256*7/8 + n),
				B: uint8(int(c+float64(x+y)/2)%256*7/8 + n),
				A: 255,
			})
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	return buf.Bytes()
}

// digitPNG draws a crude digit d (a seven-segment shape, thick strokes)
// in a 32x32 gray image, dark on light.
func digitPNG(r *rand.Rand, d int) []byte {
	segs := [10]string{"abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"}
	img := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(230 + r.IntN(25))
	}
	rect := func(x0, y0, x1, y1 int) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetGray(x, y, color.Gray{Y: uint8(r.IntN(40))})
			}
		}
	}
	for _, s := range segs[d] {
		switch s {
		case 'a':
			rect(8, 3, 24, 6)
		case 'b':
			rect(21, 3, 24, 16)
		case 'c':
			rect(21, 16, 24, 29)
		case 'd':
			rect(8, 26, 24, 29)
		case 'e':
			rect(8, 16, 11, 29)
		case 'f':
			rect(8, 3, 11, 16)
		case 'g':
			rect(8, 14, 24, 17)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}
