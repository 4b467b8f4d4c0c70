package webhook

import (
	"net/url"
	"regexp"
	"strings"
)

// A webhook URL is the receiver's, and receivers put credentials in it: a
// token in the query (?token=...), a user and password before the host.
// Nothing inferq writes where an operator or another tenant can read it
// (logs, asynq's last error in Redis, `inferq webhooks failed`) may carry
// them, so every message that names a URL names it through RedactURL.

// redacted stands in for a removed query or userinfo, so that a reader
// sees that something was there.
const redacted = "redacted"

// RedactURL returns rawURL fit for logs and error messages: the scheme,
// host and path are kept; the userinfo, the query and the fragment are
// replaced by "redacted" (http://redacted@host/path?redacted). A string
// that does not parse as a URL is cut by hand the same way.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return redactRaw(rawURL)
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		u.RawQuery = redacted
	}
	u.ForceQuery = false
	u.Fragment, u.RawFragment = "", ""
	if u.Opaque != "" {
		// "http:user:pass@host": no authority to keep apart from the rest.
		return redactRaw(rawURL)
	}
	return u.String()
}

// redactRaw redacts a URL that url.Parse refused: everything from the
// first '?' or '#' goes, and so does anything before an '@' in the
// authority.
func redactRaw(s string) string {
	cut := false
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s, cut = s[:i], true
	}
	authority := 0
	if i := strings.Index(s, "//"); i >= 0 {
		authority = i + 2
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		authority = i + 1
	}
	rest := s[authority:]
	end := strings.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		s = s[:authority] + redacted + "@" + rest[at+1:]
	}
	if cut {
		s += "?" + redacted
	}
	return s
}

// urlInText finds http(s) URLs in free text; a URL ends at white space.
var urlInText = regexp.MustCompile(`(?i)https?://[^\s]+`)

// RedactText redacts every http(s) URL in s (see RedactURL). It is the
// backstop for text whose URLs were not redacted where it was made, such
// as the last errors asynq stored before redaction existed. Quotes and
// punctuation that follow a URL (as in `Post "URL": ...`) are kept.
func RedactText(s string) string {
	return urlInText.ReplaceAllStringFunc(s, func(m string) string {
		trimmed := strings.TrimRight(m, `"'.,;:)]}>`)
		return RedactURL(trimmed) + m[len(trimmed):]
	})
}

// redactError returns err with the URLs in its message redacted. A
// *url.Error (what net/http and url.Parse return, printing the whole URL)
// is rebuilt around the redacted URL; anything else is wrapped so that its
// message is RedactText's while errors.Is and errors.As still reach the
// original (asynq.SkipRetry, *DeliveryError).
func redactError(err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: redactError(ue.Err)}
	}
	msg := err.Error()
	if red := RedactText(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redactedError carries an error under a message with its URLs redacted.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
