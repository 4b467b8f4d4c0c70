// Package preprocess turns an uploaded input into the float32 tensor a
// model's manifest declares. The worker runs it for every job, so it
// must not panic on hostile bytes, bounds the memory any input can make
// it use, and writes into buffers the caller owns.
//
// # Images
//
// ReadInput reads an upload under a byte cap; DecodeImage decodes it
// under a pixel cap; ImageSpec.Fill resamples, converts and normalises it
// into a caller's []float32:
//
//	data, err := preprocess.ReadInput(body, 0)
//	img, format, err := preprocess.DecodeImage(data, 0)
//	err = spec.Fill(buf[:spec.Len()], img)
//
// DecodeImage picks the decoder by magic bytes (JPEG, PNG, GIF first
// frame, BMP, TIFF, WebP), never by content type and never through the
// image package's global registry. It reads the header first and refuses
// an image over the pixel cap (DefaultMaxPixels) or with a side over
// MaxDimension before anything the size of the image is allocated, which
// stops decompression bombs. Panics inside third-party decoders are
// recovered and reported as CodeInvalidImage. The EXIF orientation of a
// JPEG (first APP1 "Exif" segment) or a TIFF (first IFD), in either byte
// order, is applied; EXIF in PNG and WebP files is not read.
//
// DecodeImage, Fill, Resize and ParseTensor keep no state between calls
// and are safe for concurrent use. Fill allocates only small scratch
// rows and a target-sized 8-bit image, never anything the size of the
// source.
//
// Fill's geometry (ImageSpec.Resize):
//   - stretch scales the whole image to Width x Height;
//   - letterbox scales by min(Width/w, Height/h), rounds the scaled size
//     to whole pixels, places it at ((Width-rw)/2, (Height-rh)/2) rounded
//     down, and fills the rest with PadValue;
//   - crop scales by max(Width/w, Height/h) and keeps the centre. The
//     window is computed in fractional source pixels, so it equals
//     torchvision's Resize(shorter side) + CenterCrop except for that
//     code's rounding of the intermediate size and offsets to integers.
//
// Resampling (also exported as Resize) is Pillow's BILINEAR: a triangle
// filter whose support widens by the shrink factor, so downscaling is
// antialiased; edge samples are renormalised rather than clamped. The
// result is rounded to 8 bits, as a Pillow pipeline's would be, and then
// each byte maps to its float through a per-channel table:
// (v*Scale - Mean[c]) / Std[c], with Scale 1/255 by default. Gray is
// ITU-R 601 luma rounded to 8 bits (Pillow's convert("L")), exact for
// gray inputs. Transparent pixels are composited onto white, so a
// drawing on a transparent canvas reads as dark strokes on white (which
// Invert "auto" then turns into MNIST's light strokes on black); Pillow's
// convert("RGB") would drop alpha and show the undefined colour under it.
//
// Invert "auto" compares the mean luma of the resized image's one-pixel
// border with that of its central half (the middle half of each side)
// and inverts the content (not letterbox padding) when the border is
// strictly lighter. It is a heuristic for digit- and sketch-style inputs
// whose subject sits in the middle; a blank image is never inverted.
//
// Fill's row reader has loops for the decoders' usual outputs (YCbCr,
// NYCbCrA, Gray, RGBA, NRGBA, Paletted), uses RGBA64At for the 16-bit
// types and At only for anything else. Resampling streams: each source
// row is converted once and only a few rows of floats are kept.
//
// # Tensors
//
// ParseTensor reads one sample for a TensorSpec (dtype float32, int64 or
// uint8; per-sample shape with -1 for a free dimension). Accepted forms:
//
//   - JSON: a number (for a scalar) or nested arrays, which must be
//     rectangular and non-empty; strict JSON number grammar, so NaN,
//     Infinity, hex and leading '+' are refused;
//   - NumPy .npy (format 1.0, 2.0 or 3.0, recognised by its magic
//     whatever the content type), C order, little-endian <f4, <f8, <i4,
//     <i8 or |u1; Fortran order, big-endian and other dtypes are refused.
//
// The input's shape must equal the declared one (free dimensions take
// any positive size), or equal it with an extra leading dimension of 1,
// which is dropped, or be a flat list whose length fills the declared
// shape, solving at most one free dimension. Empty tensors are refused.
//
// Values come back as float32. NaN and ±Inf are refused for every dtype
// and form, as are values out of float32 range. For a float32 input any
// .npy numeric dtype is converted. For int64 and uint8 inputs only
// integer dtypes (or integral JSON numbers such as 3 or 3.0) are
// accepted, uint8 values must be 0..255, and int64 values must lie in
// -2^24..2^24, the integers a float32 holds exactly, so that converting
// back to int64 never changes a value.
//
// # Errors
//
// Bad input is an *Error whose Code is one of CodeInvalidImage,
// CodeUnsupported, CodeTooLarge and CodeInvalidTensor; CodeOf extracts
// it. A wrong spec is an error wrapping ErrInvalidSpec; I/O failures are
// returned wrapped. Neither has a code.
package preprocess
