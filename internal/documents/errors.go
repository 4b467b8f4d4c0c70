package documents

import "fmt"

// Codes a document fails with; each is the job's error code.
const (
	CodeTooManyPages  = "too_many_pages"
	CodeEncrypted     = "encrypted_document"
	CodeUndecodable   = "undecodable_input"
	CodePageTooLarge  = "page_too_large"
	CodeRenderTimeout = "render_timeout"
	CodeRenderMemory  = "render_out_of_memory"
)

// Error is a document that can never be read: the job fails with Code.
// Page is the 1-based page it failed on, 0 when it is the whole document.
type Error struct {
	Code    string
	Page    int
	Message string
}

func (e *Error) Error() string {
	if e.Page > 0 {
		return fmt.Sprintf("page %d: %s", e.Page, e.Message)
	}
	return e.Message
}

func errorf(code string, page int, format string, args ...any) *Error {
	return &Error{Code: code, Page: page, Message: fmt.Sprintf(format, args...)}
}
