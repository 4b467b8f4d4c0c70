package preprocess

import (
	"fmt"
	"image"
	"math"
)

// Values of ImageSpec's string fields. The empty string means the first
// (default) value of each group.
const (
	ResizeStretch   = "stretch"
	ResizeLetterbox = "letterbox"
	ResizeCrop      = "crop"

	ColorRGB  = "rgb"
	ColorBGR  = "bgr"
	ColorGray = "gray"

	LayoutNCHW = "nchw"
	LayoutNHWC = "nhwc"

	InvertAuto = "auto"
)

const (
	// MaxSpecSide is the largest Width or Height an ImageSpec may ask for.
	MaxSpecSide = 1 << 14
	// MaxSpecPixels is the largest Width*Height an ImageSpec may ask for.
	MaxSpecPixels = 1 << 24
)

// ImageSpec says how a model wants its image input: size, geometry,
// channels, layout and normalisation. The zero values of the optional
// fields pick the defaults documented on each field; Validate checks the
// rest.
type ImageSpec struct {
	// Width and Height are the model's input size in pixels.
	Width, Height int
	// Resize is "stretch" (default: scale to Width x Height, ignoring
	// aspect), "letterbox" (keep aspect, fit inside, centre, pad with
	// PadValue) or "crop" (keep aspect, cover, centre crop: torchvision's
	// Resize + CenterCrop).
	Resize string
	// Color is "rgb" (default), "bgr" or "gray" (one channel, ITU-R 601
	// luma, rounded to 8 bits like Pillow's convert("L")).
	Color string
	// Layout is "nchw" (default) or "nhwc"; the batch dimension is the
	// caller's.
	Layout string
	// Scale multiplies the raw 0..255 value first; 0 means 1/255.
	Scale float32
	// Mean and Std normalise each channel after scaling: (v-mean)/std.
	// Each holds one value for all channels or one per output channel,
	// in output order (so for "bgr", Mean[0] is the blue channel's).
	// Empty means mean 0 and std 1.
	Mean, Std []float32
	// PadValue is the raw 0..255 value of letterbox padding, on every
	// channel; it goes through Scale, Mean and Std like a pixel.
	PadValue float32
	// Invert is "" (never) or "auto": when the mean luma of the image's
	// one-pixel border is greater than that of its central half, the
	// image is taken to be dark-on-light and every value becomes 255-v,
	// so that digit models trained on light strokes on a dark ground
	// (MNIST) read both kinds. It runs after resizing, on the image
	// content only: letterbox padding is never inverted.
	Invert string
}

func oneOf(v string, allowed ...string) bool {
	if v == "" {
		return true
	}
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// Validate reports whether the spec is usable. Its errors wrap
// ErrInvalidSpec: they describe a wrong model manifest, not bad input.
func (s ImageSpec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: image: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	switch {
	case s.Width < 1 || s.Height < 1 || s.Width > MaxSpecSide || s.Height > MaxSpecSide:
		return bad("size %dx%d: each side must be in 1..%d", s.Width, s.Height, MaxSpecSide)
	case s.Width*s.Height > MaxSpecPixels:
		return bad("size %dx%d is over %d pixels", s.Width, s.Height, MaxSpecPixels)
	case !oneOf(s.Resize, ResizeStretch, ResizeLetterbox, ResizeCrop):
		return bad("resize %q: want stretch, letterbox or crop", s.Resize)
	case !oneOf(s.Color, ColorRGB, ColorBGR, ColorGray):
		return bad("color %q: want rgb, bgr or gray", s.Color)
	case !oneOf(s.Layout, LayoutNCHW, LayoutNHWC):
		return bad("layout %q: want nchw or nhwc", s.Layout)
	case !oneOf(s.Invert, InvertAuto):
		return bad("invert %q: want auto or nothing", s.Invert)
	case !finite(s.Scale):
		return bad("scale %v is not finite", s.Scale)
	case !finite(s.PadValue):
		return bad("pad value %v is not finite", s.PadValue)
	}
	c := s.Channels()
	for _, p := range []struct {
		name string
		v    []float32
	}{{"mean", s.Mean}, {"std", s.Std}} {
		if len(p.v) > 1 && len(p.v) != c {
			return bad("%s has %d values; want 1 or %d", p.name, len(p.v), c)
		}
		for _, v := range p.v {
			if !finite(v) || (p.name == "std" && v == 0) {
				return bad("%s value %v", p.name, v)
			}
		}
	}
	return nil
}

// Channels returns 1 for "gray" and 3 otherwise.
func (s ImageSpec) Channels() int {
	if s.Color == ColorGray {
		return 1
	}
	return 3
}

// Len returns the number of values Fill writes: channels x height x width.
func (s ImageSpec) Len() int { return s.Channels() * s.Height * s.Width }

// Shape returns the per-sample tensor shape, [C H W] or [H W C].
func (s ImageSpec) Shape() []int64 {
	c, h, w := int64(s.Channels()), int64(s.Height), int64(s.Width)
	if s.Layout == LayoutNHWC {
		return []int64{h, w, c}
	}
	return []int64{c, h, w}
}

// Fill writes exactly s.Len() values for img into dst[:s.Len()]. It
// resamples img as Resize does (bilinear, antialiased when shrinking,
// alpha composited onto white), rounds to 8 bits as Pillow would, then
// converts and normalises each value.
//
// A spec that fails Validate or a dst that is too short is an error
// without a code; an empty image is CodeInvalidImage.
func (s ImageSpec) Fill(dst []float32, img image.Image) error {
	if err := s.Validate(); err != nil {
		return err
	}
	n := s.Len()
	if len(dst) < n {
		return fmt.Errorf("preprocess: fill: dst holds %d values, need %d", len(dst), n)
	}
	if img == nil || img.Bounds().Empty() {
		return inputError(CodeInvalidImage, nil, "image has no pixels")
	}
	b := img.Bounds()
	sw, sh := float64(b.Dx()), float64(b.Dy())
	W, H := s.Width, s.Height
	rr := newRowReader(img)

	// content is what the image becomes; it sits at (ox, oy) of the output.
	var content *image.NRGBA
	ox, oy := 0, 0
	switch s.Resize {
	case ResizeLetterbox:
		f := min(float64(W)/sw, float64(H)/sh)
		rw := min(max(int(math.Round(sw*f)), 1), W)
		rh := min(max(int(math.Round(sh*f)), 1), H)
		content = image.NewNRGBA(image.Rect(0, 0, rw, rh))
		resample(content, rr, 0, 0, sw, sh)
		ox, oy = (W-rw)/2, (H-rh)/2
	case ResizeCrop:
		// The centred source window with the output's aspect; samples
		// around it still feed the filter, as in resize-then-crop.
		f := max(float64(W)/sw, float64(H)/sh)
		cw, ch := min(float64(W)/f, sw), min(float64(H)/f, sh)
		content = image.NewNRGBA(image.Rect(0, 0, W, H))
		resample(content, rr, (sw-cw)/2, (sh-ch)/2, cw, ch)
	default:
		content = image.NewNRGBA(image.Rect(0, 0, W, H))
		resample(content, rr, 0, 0, sw, sh)
	}
	invert := s.Invert == InvertAuto && darkOnLight(content)

	// Every output value is a function of one byte: a table per channel.
	c := s.Channels()
	scale := s.Scale
	if scale == 0 {
		scale = 1.0 / 255
	}
	var lut [3][256]float32
	var pad [3]float32
	for ch := 0; ch < c; ch++ {
		mean, std := float32(0), float32(1)
		if len(s.Mean) > 0 {
			mean = s.Mean[min(ch, len(s.Mean)-1)]
		}
		if len(s.Std) > 0 {
			std = s.Std[min(ch, len(s.Std)-1)]
		}
		for v := range 256 {
			raw := v
			if invert {
				raw = 255 - v
			}
			lut[ch][v] = (float32(raw)*scale - mean) / std
		}
		pad[ch] = (s.PadValue*scale - mean) / std
	}
	// Output channel k reads source channel order[k] (R=0, G=1, B=2).
	order := [3]int{0, 1, 2}
	if s.Color == ColorBGR {
		order = [3]int{2, 1, 0}
	}
	pixStride, chanStride := 1, W*H
	if s.Layout == LayoutNHWC {
		pixStride, chanStride = c, 1
	}
	rw, rh := content.Rect.Dx(), content.Rect.Dy()
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			i := (y*W + x) * pixStride
			cx, cy := x-ox, y-oy
			if cx < 0 || cy < 0 || cx >= rw || cy >= rh {
				for ch := 0; ch < c; ch++ {
					dst[i+ch*chanStride] = pad[ch]
				}
				continue
			}
			p := content.Pix[cy*content.Stride+4*cx:][:3]
			if c == 1 {
				dst[i] = lut[0][luma(p[0], p[1], p[2])]
				continue
			}
			for ch := 0; ch < 3; ch++ {
				dst[i+ch*chanStride] = lut[ch][p[order[ch]]]
			}
		}
	}
	return nil
}

// luma is ITU-R 601 luma, rounded, as Pillow's convert("L") (exact for
// gray pixels).
func luma(r, g, b uint8) uint8 {
	return uint8((299*uint32(r) + 587*uint32(g) + 114*uint32(b) + 500) / 1000)
}

// darkOnLight is Invert "auto"'s test: is the mean luma of the one-pixel
// border greater than that of the central half (the middle half of each
// side)?
func darkOnLight(m *image.NRGBA) bool {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	var border, centre, nb, nc int64
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := m.Pix[y*m.Stride+4*x:][:3]
			v := int64(luma(p[0], p[1], p[2]))
			if x == 0 || y == 0 || x == w-1 || y == h-1 {
				border += v
				nb++
			}
			if x >= w/4 && x < w-w/4 && y >= h/4 && y < h-h/4 {
				centre += v
				nc++
			}
		}
	}
	return nb > 0 && nc > 0 && border*nc > centre*nb
}
