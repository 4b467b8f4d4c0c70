package archive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
)

func (w *walker) tar(src *source, gzipped bool) error {
	w.packed = func() int64 { return src.n }
	var r io.Reader = src
	if gzipped {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return classify("", err)
		}
		defer zr.Close()
		r = &stream{r: zr, src: src, max: w.lim.MaxTotalBytes + int64(w.lim.MaxEntries)*framingPerEntry + RatioFloor}
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			// ErrInsecurePath (GODEBUG tarinsecurepath=0) is left to
			// CleanName, which judges every name the same way.
			return classify("", err)
		}
		if err := w.entry(hdr.Name); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse: // '\x00': pre-POSIX regular file
			// Regular data; sparse holes unpack as zeros and count
			// against the limits like any other byte.
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue // archive/tar leaves no data to skip
		case 'V': // GNU volume label
			if err := w.skip(tr, hdr.Name); err != nil {
				return err
			}
			continue
		case tar.TypeSymlink, tar.TypeLink:
			return newErr(CodeLink, hdr.Name, "symbolic or hard link", nil)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return newErr(CodeLink, hdr.Name, "device or FIFO", nil)
		default:
			return newErr(CodeInvalid, hdr.Name, "unsupported entry type "+quote(string(hdr.Typeflag)), nil)
		}
		name, err := CleanName(hdr.Name)
		if err != nil {
			return err
		}
		if IsOSMetadata(name) {
			if err := w.skip(tr, hdr.Name); err != nil {
				return err
			}
			continue
		}
		if hdr.Size > w.lim.MaxEntryBytes {
			return newErr(CodeTooLarge, hdr.Name, "file larger than the limit", nil)
		}
		if w.total+hdr.Size > w.lim.MaxTotalBytes {
			return newErr(CodeTooLarge, hdr.Name, "files together larger than the limit", nil)
		}
		if err := w.unique(hdr.Name, name); err != nil {
			return err
		}
		if err := w.deliver(hdr.Name, name, hdr.Size, tr, 0); err != nil {
			return err
		}
	}
}

// framingPerEntry is the tar framing (header, padding, a PAX record or a
// long name) allowed per entry on top of the files' own bytes.
const framingPerEntry = 4 << 10

// streamRatio bounds the decompressed tar stream against the gzip bytes
// read. Framing compresses well (a tar of many tiny files runs near 80:1),
// so this is set just under deflate's ceiling of about 1032:1: it catches
// a stream of nothing but repetition, such as endless extended headers
// that never reach a file, quickly; files' own bytes meet MaxRatio.
const streamRatio = 1000

// stream bounds the decompressed tar stream itself, framing included, so
// bytes archive/tar reads and skips inside Next (extended headers, long
// names) are bounded too.
type stream struct {
	r   io.Reader
	src *source
	max int64
	n   int64
}

func (s *stream) Read(p []byte) (int, error) {
	if room := s.max - s.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	switch {
	case s.n > s.max:
		return 0, newErr(CodeTooLarge, "", "archive unpacks to more than the limit", nil)
	case s.n > RatioFloor && s.n > streamRatio*max(s.src.n, 1):
		return 0, newErr(CodeBomb, "", "archive unpacks to too many times its size", nil)
	}
	return n, err
}

// skip reads past an entry's data, counting it against the limits like a
// file's, since it is unpacked all the same.
func (w *walker) skip(r io.Reader, name string) error {
	er := &entryReader{w: w, r: r, name: name}
	if _, err := io.Copy(io.Discard, er); err != nil {
		return classify(name, err)
	}
	return nil
}
