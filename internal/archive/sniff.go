package archive

import (
	"bytes"
	"strings"
)

// Archive kinds Walk reads.
const (
	KindZip   = "zip"
	KindTarGz = "tar.gz"
	KindTar   = "tar"
)

// SniffLen is how many leading bytes Sniff needs to recognize every kind.
const SniffLen = 512

// Sniff names the kind of archive that starts with head, "" when it is
// none Walk reads. Gzip is taken to hold a tar. A tar is recognized by its
// "ustar" magic, so head needs at least 262 bytes of it; pre-POSIX tars
// without the magic are not recognized.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return KindZip
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return KindTarGz
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return KindTar
	}
	return ""
}

// KindFromName guesses the kind from a file name's extension (.zip,
// .tar.gz, .tgz, .tar), "" when it has none of them.
func KindFromName(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".zip"):
		return KindZip
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return KindTarGz
	case strings.HasSuffix(n, ".tar"):
		return KindTar
	}
	return ""
}
