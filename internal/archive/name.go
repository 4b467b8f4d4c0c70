package archive

import (
	"path"
	"strings"
	"unicode/utf8"
)

// Bounds on entry names, in bytes.
const (
	MaxNameLen    = 1024
	MaxSegmentLen = 255
)

// CleanName turns an archive entry name (or an uploaded file name) into a
// safe relative path: backslashes become slashes, "." segments and
// repeated or trailing slashes go, and it refuses, with CodeUnsafePath,
// names that are empty, absolute ("/x", "C:x", "\\server\x"), contain a ".."
// segment anywhere (even one that would stay inside), hold NUL or other
// control characters or invalid UTF-8, or are longer than MaxNameLen (or a
// segment longer than MaxSegmentLen).
func CleanName(raw string) (string, error) {
	bad := func(reason string) (string, error) { return "", newErr(CodeUnsafePath, raw, reason, nil) }
	if raw == "" {
		return bad("empty name")
	}
	if len(raw) > MaxNameLen {
		return bad("name too long")
	}
	if !utf8.ValidString(raw) {
		return bad("name is not UTF-8")
	}
	for _, r := range raw {
		if r == 0 {
			return bad("NUL in name")
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("control character in name")
		}
	}
	s := strings.ReplaceAll(raw, `\`, "/")
	if strings.HasPrefix(s, "/") {
		return bad("absolute path")
	}
	if len(s) >= 2 && s[1] == ':' && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return bad("absolute path (drive letter)")
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == ".." {
			return bad("path traversal (..)")
		}
		if len(seg) > MaxSegmentLen {
			return bad("path segment too long")
		}
	}
	c := path.Clean(s)
	if c == "." || c == "" {
		return bad("no file name")
	}
	return c, nil
}

// IsOSMetadata reports whether a clean name is a file an operating system
// adds to archives on its own (macOS resource forks and folder settings,
// Windows thumbnails and folder settings), which Walk skips rather than
// turning into jobs that could only fail.
func IsOSMetadata(name string) bool {
	if name == "__MACOSX" || strings.HasPrefix(name, "__MACOSX/") {
		return true
	}
	base := path.Base(name)
	switch base {
	case ".DS_Store", "Thumbs.db", "desktop.ini":
		return true
	}
	return strings.HasPrefix(base, "._")
}
