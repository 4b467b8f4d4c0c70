package preprocess

import (
	"bytes"
	"fmt"
	"math"
	"mime"
	"strings"
)

// Tensor dtypes a model may declare.
const (
	DTypeFloat32 = "float32"
	DTypeInt64   = "int64"
	DTypeUint8   = "uint8"
)

const (
	// DefaultMaxElems is the element cap ParseTensor applies when given
	// maxElems <= 0 (64 MiB of float32).
	DefaultMaxElems = 1 << 24
	// maxRank bounds nesting depth and shape length.
	maxRank = 32
	// maxExactInt is the largest integer magnitude a float32 holds
	// exactly; int64 inputs beyond it are refused rather than rounded.
	maxExactInt = 1 << 24
)

// TensorSpec is a model input that takes a tensor as it is.
type TensorSpec struct {
	// DType is "float32" (default), "int64" or "uint8".
	DType string
	// Shape is the per-sample shape, without the batch dimension; -1
	// leaves a dimension free.
	Shape []int64
}

// Validate reports whether the spec is usable. Its errors wrap
// ErrInvalidSpec.
func (s TensorSpec) Validate() error {
	if !oneOf(s.DType, DTypeFloat32, DTypeInt64, DTypeUint8) {
		return fmt.Errorf("%w: tensor: dtype %q: want float32, int64 or uint8", ErrInvalidSpec, s.DType)
	}
	if len(s.Shape) > maxRank {
		return fmt.Errorf("%w: tensor: rank %d is over %d", ErrInvalidSpec, len(s.Shape), maxRank)
	}
	for _, d := range s.Shape {
		if d < 1 && d != -1 {
			return fmt.Errorf("%w: tensor: dimension %d in shape %v: want -1 or a positive size", ErrInvalidSpec, d, s.Shape)
		}
	}
	return nil
}

var npyMagic = []byte("\x93NUMPY")

// ParseTensor reads one sample's tensor and returns its values in C
// order, as float32, with its concrete shape.
//
// The input is a NumPy .npy file when it starts with the .npy magic
// (whatever contentType says), and JSON when contentType is JSON, plain
// text, application/octet-stream or empty; other content types are
// CodeUnsupported. See the package documentation for the accepted forms,
// dtype rules and limits. More than maxElems values (DefaultMaxElems when
// maxElems <= 0) is CodeTooLarge; every other problem with the input is
// CodeInvalidTensor.
func ParseTensor(data []byte, contentType string, spec TensorSpec, maxElems int) ([]float32, []int64, error) {
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	if maxElems <= 0 {
		maxElems = DefaultMaxElems
	}
	dtype := spec.DType
	if dtype == "" {
		dtype = DTypeFloat32
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	}

	var (
		vals  []float32
		shape []int64
	)
	switch {
	case bytes.HasPrefix(data, npyMagic):
		vals, shape, err = parseNPY(data, dtype, maxElems)
	case mt == "application/x-npy" || mt == "application/npy":
		return nil, nil, inputError(CodeInvalidTensor, nil, "content type %s but no .npy magic", mt)
	case mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json") ||
		mt == "text/plain" || mt == "application/octet-stream" || mt == "":
		vals, shape, err = parseJSONTensor(data, dtype, maxElems)
	default:
		return nil, nil, inputError(CodeUnsupported, nil, "content type %q: send application/json or application/x-npy", contentType)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(vals) == 0 {
		return nil, nil, inputError(CodeInvalidTensor, nil, "tensor is empty")
	}
	shape, err = matchShape(shape, len(vals), spec.Shape)
	if err != nil {
		return nil, nil, err
	}
	return vals, shape, nil
}

// matchShape checks the shape the input carried against the declared
// one and returns the shape to use. Besides an exact match (with -1
// free), it accepts a leading batch dimension of 1, which it drops, and
// a flat list whose length fits the declared shape with at most one free
// dimension.
func matchShape(got []int64, n int, want []int64) ([]int64, error) {
	fits := func(g []int64) bool {
		if len(g) != len(want) {
			return false
		}
		for i, d := range want {
			if d != -1 && g[i] != d {
				return false
			}
		}
		return true
	}
	switch {
	case fits(got):
		return got, nil
	case len(got) == len(want)+1 && got[0] == 1 && fits(got[1:]):
		return got[1:], nil
	case len(got) == 1 && len(want) != 1:
		known, free := int64(1), -1
		for i, d := range want {
			if d != -1 {
				if d > int64(n)/known { // the product is over n: no fit, and no overflow
					known = int64(n) + 1
					break
				}
				known *= d
				continue
			}
			if free >= 0 {
				return nil, inputError(CodeInvalidTensor, nil, "flat list of %d values cannot fill shape %v: more than one free dimension; send nested arrays", n, want)
			}
			free = i
		}
		shape := append([]int64(nil), want...)
		switch {
		case free < 0 && known == int64(n):
			return shape, nil
		case free >= 0 && known <= int64(n) && int64(n)%known == 0:
			shape[free] = int64(n) / known
			return shape, nil
		}
	}
	return nil, inputError(CodeInvalidTensor, nil, "shape %v does not match %s", got, shapeString(want))
}

func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		if d == -1 {
			parts[i] = "any"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// convert checks one value against dtype and returns it as float32, or
// says what is wrong with it. Non-finite values are refused for every
// dtype.
func convert(v float64, dtype string) (float32, string) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Sprintf("value %v is not finite", v)
	}
	switch dtype {
	case DTypeInt64:
		if v != math.Trunc(v) || math.Abs(v) > maxExactInt {
			return 0, fmt.Sprintf("value %v is not an integer in -2^24..2^24", v)
		}
	case DTypeUint8:
		if v != math.Trunc(v) || v < 0 || v > 255 {
			return 0, fmt.Sprintf("value %v is not an integer in 0..255", v)
		}
	default:
		if math.Abs(v) > math.MaxFloat32 {
			return 0, fmt.Sprintf("value %v is out of float32 range", v)
		}
	}
	return float32(v), ""
}
