package archive

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
)

// Limits bound what Walk accepts. A zero field takes its default from
// DefaultLimits; there is no "unlimited".
type Limits struct {
	// MaxArchiveBytes bounds the archive itself as uploaded.
	MaxArchiveBytes int64
	// MaxEntries bounds the number of entries, directories included.
	MaxEntries int
	// MaxEntryBytes bounds one file's unpacked size.
	MaxEntryBytes int64
	// MaxTotalBytes bounds the sum of the files' unpacked sizes.
	MaxTotalBytes int64
	// MaxRatio bounds unpacked / compressed, per zip entry and for the
	// whole archive, once more than RatioFloor bytes are unpacked.
	MaxRatio float64
}

// DefaultLimits are the limits a zero Limits field takes.
func DefaultLimits() Limits {
	return Limits{
		MaxArchiveBytes: 2 << 30,
		MaxEntries:      100_000,
		MaxEntryBytes:   256 << 20,
		MaxTotalBytes:   8 << 30,
		MaxRatio:        100,
	}
}

// RatioFloor is how many bytes may unpack before the ratio is judged, so a
// small, very compressible file (a blank page, a tar's padding) is never
// taken for a bomb.
const RatioFloor = 1 << 20

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxArchiveBytes <= 0 {
		l.MaxArchiveBytes = d.MaxArchiveBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxEntryBytes <= 0 {
		l.MaxEntryBytes = d.MaxEntryBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	return l
}

// WalkFunc receives one regular file: its cleaned name, the size its
// header declares, and its content. r is valid only until WalkFunc
// returns; reading it enforces the limits, so a read error may be an
// *Error, which Walk then returns whatever WalkFunc made of it.
type WalkFunc func(name string, size int64, r io.Reader) error

// Walk reads the archive r of the given kind (KindZip, KindTarGz or its
// alias "tgz", KindTar) and calls fn for each regular file, in archive
// order, streaming: only a zip is spooled, to a temporary file (it needs
// random access), never to memory. Directories and OS metadata files are
// skipped; links and special files refuse the archive. Violations return
// an *Error. A tar is refused as it is read, so fn may have seen earlier
// entries by then; a zip's names, types, entry count and declared sizes
// are all checked before fn is first called. An error fn returns stops the
// walk and is returned, wrapped.
func Walk(ctx context.Context, r io.Reader, kind string, lim Limits, fn WalkFunc) error {
	lim = lim.withDefaults()
	w := &walker{ctx: ctx, lim: lim, fn: fn, seen: make(map[[16]byte]struct{})}
	src := &source{ctx: ctx, r: r, max: lim.MaxArchiveBytes}
	switch kind {
	case KindZip:
		return w.zip(src)
	case KindTarGz, "tgz":
		return w.tar(src, true)
	case KindTar:
		return w.tar(src, false)
	}
	return newErr(CodeInvalid, "", "unknown archive kind "+quote(kind), nil)
}

func quote(s string) string { return "\"" + s + "\"" }

// walker holds the running totals of one Walk.
type walker struct {
	ctx     context.Context
	lim     Limits
	fn      WalkFunc
	entries int
	total   int64        // unpacked file bytes so far
	packed  func() int64 // archive bytes consumed so far
	seen    map[[16]byte]struct{}
}

// entry counts one more entry against MaxEntries.
func (w *walker) entry(name string) error {
	w.entries++
	if w.entries > w.lim.MaxEntries {
		return newErr(CodeTooManyEntries, name, "more than the limit of entries", nil)
	}
	return nil
}

// unique refuses a second entry of the same cleaned name: each file
// becomes a job named after it, and two would be ambiguous.
func (w *walker) unique(raw, name string) error {
	h := sha256.Sum256([]byte(name))
	k := [16]byte(h[:16])
	if _, dup := w.seen[k]; dup {
		return newErr(CodeInvalid, raw, "duplicate entry name", nil)
	}
	w.seen[k] = struct{}{}
	return nil
}

// deliver hands one file to fn through a limit-enforcing reader and drains
// what fn left unread through it too, so skipped bytes count as well.
func (w *walker) deliver(raw, name string, size int64, r io.Reader, packedSize int64) error {
	er := &entryReader{w: w, r: r, name: raw, packed: packedSize}
	err := w.fn(name, size, er)
	if er.err != nil {
		return er.err
	}
	if err != nil {
		return &walkFuncError{name: name, err: err}
	}
	if _, err := io.Copy(io.Discard, er); err != nil {
		return er.classify(err)
	}
	return nil
}

// walkFuncError wraps what fn returned with the entry it was about.
type walkFuncError struct {
	name string
	err  error
}

func (e *walkFuncError) Error() string {
	return "archive entry " + quote(e.name) + ": " + e.err.Error()
}
func (e *walkFuncError) Unwrap() error { return e.err }

// entryReader is the reader fn sees: it counts every byte against the
// limits as it is unpacked, not as the headers claim.
type entryReader struct {
	w      *walker
	r      io.Reader
	name   string
	n      int64
	packed int64 // the entry's compressed size; 0: no per-entry ratio
	err    error // sticky
}

func (e *entryReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if err := e.w.ctx.Err(); err != nil {
		e.err = err
		return 0, err
	}
	// Never unpack more than one byte past a limit.
	room := min(e.w.lim.MaxEntryBytes-e.n, e.w.lim.MaxTotalBytes-e.w.total) + 1
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	e.w.total += int64(n)
	if verr := e.check(); verr != nil {
		e.err = verr
		return 0, verr
	}
	if err != nil && err != io.EOF {
		e.err = e.classify(err)
		return n, e.err
	}
	return n, err
}

func (e *entryReader) check() error {
	l := e.w.lim
	switch {
	case e.packed > 0 && e.n > RatioFloor && float64(e.n) > l.MaxRatio*float64(e.packed):
		return newErr(CodeBomb, e.name, "file unpacks to too many times its compressed size", nil)
	case e.w.total > RatioFloor && float64(e.w.total) > l.MaxRatio*float64(max(e.w.packed(), 1)):
		return newErr(CodeBomb, e.name, "archive unpacks to too many times its size", nil)
	case e.n > l.MaxEntryBytes:
		return newErr(CodeTooLarge, e.name, "file larger than the limit", nil)
	case e.w.total > l.MaxTotalBytes:
		return newErr(CodeTooLarge, e.name, "files together larger than the limit", nil)
	}
	return nil
}

// classify turns a read error into what Walk returns: the caller's own
// reader's and the context's errors unchanged, our *Error as is, and
// anything from the decoders as CodeInvalid.
func (e *entryReader) classify(err error) error {
	return classify(e.name, err)
}

func classify(entry string, err error) error {
	var ae *Error
	var se *sourceError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &se):
		return se.err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	return newErr(CodeInvalid, entry, "corrupt data", err)
}

// source wraps the caller's reader: it counts the archive's bytes, stops
// at MaxArchiveBytes and at cancellation, and marks the caller's errors.
type source struct {
	ctx context.Context
	r   io.Reader
	max int64
	n   int64
}

func (s *source) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	if room := s.max - s.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n > s.max {
		return 0, newErr(CodeTooLarge, "", "archive larger than the limit", nil)
	}
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}
