package preprocess

import (
	"errors"
	"fmt"
)

// Error codes are stable API strings; callers map them to job error codes.
const (
	// CodeInvalidImage means the bytes are not a decodable image.
	CodeInvalidImage = "invalid_image"
	// CodeUnsupported means the input is in a format or variant this
	// package does not read (HEIC, AVIF, JPEG in TIFF, an unknown
	// content type, ...).
	CodeUnsupported = "unsupported_format"
	// CodeTooLarge means the input is over a size cap: too many bytes,
	// too many pixels (a decompression bomb) or too many tensor elements.
	CodeTooLarge = "input_too_large"
	// CodeInvalidTensor means tensor bytes are malformed (bad JSON or
	// .npy) or do not match the declared dtype or shape.
	CodeInvalidTensor = "invalid_tensor"
)

// ErrInvalidSpec is wrapped by the errors that ImageSpec.Validate and
// TensorSpec.Validate return: the model manifest is wrong, not the input.
var ErrInvalidSpec = errors.New("invalid preprocessing spec")

// Error is the error returned for bad input. Code is one of the Code*
// constants; Message is safe to show to the user who uploaded the input;
// Err, when set, is the underlying cause (often from an image decoder).
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return "preprocess: " + e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return "preprocess: " + e.Code + ": " + e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the Code of the first *Error in err's chain, or "" when
// there is none (a programming or configuration error).
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func inputError(code string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}
