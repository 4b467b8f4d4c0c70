package archive

import (
	"errors"
	"fmt"
)

// Stable error codes; the HTTP API answers with them.
const (
	CodeInvalid        = "archive_invalid"
	CodeUnsafePath     = "archive_unsafe_path"
	CodeLink           = "archive_link"
	CodeTooLarge       = "archive_too_large"
	CodeBomb           = "archive_bomb"
	CodeTooManyEntries = "archive_too_many_entries"
)

// Error is a refused archive. Match it with errors.As, or by code with
// errors.Is against the Err* values below.
type Error struct {
	// Code is one of the Code* constants.
	Code string
	// Entry is the entry's name as stored in the archive (unsafe: quote it
	// when printing), "" when the archive as a whole is refused.
	Entry string
	// Reason says what was wrong, for people.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	s := "archive"
	if e.Entry != "" {
		s += fmt.Sprintf(" entry %q", e.Entry)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " (" + e.Code + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBomb) and the like match any *Error with
// the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is, one per code.
var (
	ErrInvalid        = &Error{Code: CodeInvalid, Reason: "not a valid archive"}
	ErrUnsafePath     = &Error{Code: CodeUnsafePath, Reason: "unsafe entry name"}
	ErrLink           = &Error{Code: CodeLink, Reason: "link or special file"}
	ErrTooLarge       = &Error{Code: CodeTooLarge, Reason: "too large"}
	ErrBomb           = &Error{Code: CodeBomb, Reason: "compression ratio too high"}
	ErrTooManyEntries = &Error{Code: CodeTooManyEntries, Reason: "too many entries"}
)

// Code returns the code of the *Error in err's chain, "" if there is none.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newErr(code, entry, reason string, err error) *Error {
	return &Error{Code: code, Entry: entry, Reason: reason, Err: err}
}

// sourceError marks a read error of the caller's reader (a dropped upload,
// say): it is the caller's, not the archive's, and is returned unchanged.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }
