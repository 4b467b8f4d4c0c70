package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

const (
	// DefaultMaxPixels is the pixel cap DecodeImage applies when given
	// maxPixels <= 0: 2^24, enough for 16 MP cameras and every phone's
	// default mode. Decoding costs up to about 15 bytes a pixel (a
	// progressive 4:4:4 JPEG keeps its coefficients, then its pixels), so
	// about 250 MiB at this cap; raise it only where workers have room.
	DefaultMaxPixels = 1 << 24
	// MaxDimension is the largest width or height DecodeImage accepts,
	// whatever the pixel cap, so that a 1 x 30,000,000 strip cannot
	// make resampling tables proportional to its length.
	MaxDimension = 1<<16 - 1
	// DefaultMaxBytes is the byte cap ReadInput applies when given
	// maxBytes <= 0.
	DefaultMaxBytes = 32 << 20
)

// Image format names DecodeImage returns.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatGIF  = "gif"
	FormatBMP  = "bmp"
	FormatTIFF = "tiff"
	FormatWebP = "webp"
)

type imageFormat struct {
	name   string
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

// sniffFormat picks the decoder by magic bytes rather than through the
// image package's global registry, so that only these six formats are
// ever decoded, whatever else the program links in.
func sniffFormat(data []byte) *imageFormat {
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8")):
		return &imageFormat{FormatJPEG, jpeg.DecodeConfig, jpeg.Decode}
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return &imageFormat{FormatPNG, png.DecodeConfig, png.Decode}
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return &imageFormat{FormatGIF, gif.DecodeConfig, gif.Decode}
	case bytes.HasPrefix(data, []byte("BM")):
		return &imageFormat{FormatBMP, bmp.DecodeConfig, bmp.Decode}
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return &imageFormat{FormatTIFF, tiff.DecodeConfig, tiff.Decode}
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return &imageFormat{FormatWebP, webp.DecodeConfig, webp.Decode}
	}
	return nil
}

// otherImageFormat names image formats that are recognised but not read,
// so that they get CodeUnsupported rather than CodeInvalidImage.
func otherImageFormat(data []byte) string {
	switch {
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		return "HEIF/AVIF"
	case bytes.HasPrefix(data, []byte("\xff\x0a")), bytes.HasPrefix(data, []byte("\x00\x00\x00\x0cJXL ")):
		return "JPEG XL"
	case bytes.HasPrefix(data, []byte("8BPS")):
		return "PSD"
	case bytes.HasPrefix(data, []byte("qoif")):
		return "QOI"
	case bytes.HasPrefix(data, []byte("%PDF")):
		return "PDF"
	case bytes.HasPrefix(data, []byte("\x00\x00\x01\x00")):
		return "ICO"
	case bytes.HasPrefix(data, []byte("<svg")), bytes.HasPrefix(data, []byte("<?xml")):
		return "SVG"
	case len(data) >= 3 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7' && (data[2] == '\n' || data[2] == ' ' || data[2] == '\r' || data[2] == '\t'):
		return "Netpbm"
	}
	return ""
}

// DecodeImage decodes a JPEG, PNG, GIF (first frame), BMP, TIFF or WebP
// image and returns it with its format name (one of the Format*
// constants).
//
// The header is read first, and an image of more than maxPixels pixels
// (DefaultMaxPixels when maxPixels <= 0) or wider or taller than
// MaxDimension is refused with CodeTooLarge before any pixel memory is
// allocated. An EXIF orientation (1 to 8) in a JPEG APP1 segment or in a
// TIFF's first IFD is applied, so the image comes back upright; width and
// height swap for orientations 5 to 8.
//
// Every failure is an *Error: CodeInvalidImage for bytes that cannot be
// decoded, CodeUnsupported for known but unread formats and variants,
// CodeTooLarge for the caps. A panic inside a decoder is recovered and
// reported as CodeInvalidImage.
func DecodeImage(data []byte, maxPixels int64) (image.Image, string, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	f := sniffFormat(data)
	if f == nil {
		if name := otherImageFormat(data); name != "" {
			return nil, "", inputError(CodeUnsupported, nil, "%s images are not supported (use JPEG, PNG, GIF, BMP, TIFF or WebP)", name)
		}
		return nil, "", inputError(CodeInvalidImage, nil, "not a JPEG, PNG, GIF, BMP, TIFF or WebP image")
	}

	var cfg image.Config
	err := recoverDecoder(func() (err error) {
		cfg, err = f.config(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, "", decodeError(f.name, "header", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", inputError(CodeInvalidImage, nil, "%s header gives an empty image (%dx%d)", f.name, cfg.Width, cfg.Height)
	}
	if err := checkSize(cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, "", err
	}

	var img image.Image
	err = recoverDecoder(func() (err error) {
		img, err = f.decode(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return nil, "", decodeError(f.name, "data", err)
	}
	// A decoder may return an image that is not what its header said (a
	// GIF's first frame is a part of its logical screen); check again.
	b := img.Bounds()
	if b.Empty() {
		return nil, "", inputError(CodeInvalidImage, nil, "%s image has no pixels", f.name)
	}
	if err := checkSize(b.Dx(), b.Dy(), maxPixels); err != nil {
		return nil, "", err
	}

	var o int
	switch f.name {
	case FormatJPEG:
		o = jpegOrientation(data)
	case FormatTIFF:
		o = tiffOrientation(data)
	}
	return orient(img, o), f.name, nil
}

func checkSize(w, h int, maxPixels int64) error {
	if w > MaxDimension || h > MaxDimension {
		return inputError(CodeTooLarge, nil, "image is %dx%d; the largest side allowed is %d", w, h, MaxDimension)
	}
	if int64(w)*int64(h) > maxPixels {
		return inputError(CodeTooLarge, nil, "image is %dx%d (%d pixels); at most %d pixels are allowed", w, h, int64(w)*int64(h), maxPixels)
	}
	return nil
}

// errDecoderPanic marks a panic recovered from a third-party decoder.
var errDecoderPanic = errors.New("decoder panic")

// recoverDecoder runs a third-party decoder and turns a panic into an
// error: hostile bytes must fail one job, not kill the worker. Only
// decoder calls go through here, so that panics in this package's own
// code still surface in tests and fuzzing.
func recoverDecoder(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errDecoderPanic, r)
		}
	}()
	return f()
}

func decodeError(format, part string, err error) *Error {
	var (
		jpegUnsupported jpeg.UnsupportedError
		pngUnsupported  png.UnsupportedError
		tiffUnsupported tiff.UnsupportedError
	)
	if errors.As(err, &jpegUnsupported) || errors.As(err, &pngUnsupported) ||
		errors.As(err, &tiffUnsupported) || errors.Is(err, bmp.ErrUnsupported) {
		return inputError(CodeUnsupported, err, "unsupported %s variant", format)
	}
	return inputError(CodeInvalidImage, err, "cannot decode %s %s", format, part)
}

// ReadInput reads all of r, refusing more than maxBytes bytes
// (DefaultMaxBytes when maxBytes <= 0) with CodeTooLarge. Read errors are
// returned wrapped, without a code: they are I/O failures, not bad input.
func ReadInput(r io.Reader, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, inputError(CodeTooLarge, nil, "input is over %d bytes", maxBytes)
	}
	return data, nil
}
