package archive

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
)

func (w *walker) zip(src *source) error {
	f, err := os.CreateTemp("", "inferq-archive-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	size, err := io.Copy(f, src)
	if err != nil {
		return classify("", err)
	}
	w.packed = func() int64 { return size }

	// archive/zip builds a File for every central-directory record before
	// it returns, so count them first: a small archive can hold millions.
	n, err := zipRecords(f, size, w.lim.MaxEntries)
	if err != nil {
		return err
	}
	if n > w.lim.MaxEntries {
		return newErr(CodeTooManyEntries, "", "more than the limit of entries", nil)
	}
	zr, err := zip.NewReader(f, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return newErr(CodeInvalid, "", "not a readable zip", err)
	}

	// Judge every header before the first file is handed out.
	type item struct {
		f    *zip.File
		name string
	}
	items := make([]item, 0, len(zr.File))
	var declared uint64
	for _, zf := range zr.File {
		if err := w.entry(zf.Name); err != nil {
			return err
		}
		mode := zf.Mode()
		if mode.IsDir() || strings.HasSuffix(strings.ReplaceAll(zf.Name, `\`, "/"), "/") {
			continue
		}
		switch t := mode.Type(); {
		case t&fs.ModeSymlink != 0:
			return newErr(CodeLink, zf.Name, "symbolic link", nil)
		case t != 0:
			return newErr(CodeLink, zf.Name, "device, FIFO, socket or other special file", nil)
		}
		name, err := CleanName(zf.Name)
		if err != nil {
			return err
		}
		if IsOSMetadata(name) {
			continue
		}
		if zf.Flags&0x1 != 0 {
			return newErr(CodeInvalid, zf.Name, "encrypted entry", nil)
		}
		if zf.Method != zip.Store && zf.Method != zip.Deflate {
			return newErr(CodeInvalid, zf.Name, "unsupported compression method", nil)
		}
		// A bomb is called one before its size is judged.
		if zf.UncompressedSize64 > RatioFloor && float64(zf.UncompressedSize64) > w.lim.MaxRatio*float64(max(zf.CompressedSize64, 1)) {
			return newErr(CodeBomb, zf.Name, "file unpacks to too many times its compressed size", nil)
		}
		if zf.UncompressedSize64 > uint64(w.lim.MaxEntryBytes) {
			return newErr(CodeTooLarge, zf.Name, "file larger than the limit", nil)
		}
		declared += zf.UncompressedSize64
		if declared > uint64(w.lim.MaxTotalBytes) {
			return newErr(CodeTooLarge, zf.Name, "files together larger than the limit", nil)
		}
		if err := w.unique(zf.Name, name); err != nil {
			return err
		}
		items = append(items, item{zf, name})
	}
	if declared > RatioFloor && float64(declared) > w.lim.MaxRatio*float64(max(size, 1)) {
		return newErr(CodeBomb, "", "archive unpacks to too many times its size", nil)
	}

	for _, it := range items {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		rc, err := it.f.Open()
		if err != nil {
			return newErr(CodeInvalid, it.f.Name, "cannot open entry", err)
		}
		err = w.deliver(it.f.Name, it.name, int64(it.f.UncompressedSize64), rc, int64(max(it.f.CompressedSize64, 1)))
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Zip record layouts (APPNOTE.TXT 4.3).
const (
	eocdSig     = 0x06054b50
	eocdLen     = 22
	loc64Sig    = 0x07064b50
	loc64Len    = 20
	eocd64Sig   = 0x06064b50
	eocd64Len   = 56
	centralSig  = 0x02014b50
	centralLen  = 46
	maxEOCDSpan = 65 * 1024 // as far back as archive/zip looks
	maxInt64    = 1<<63 - 1
)

// zipRecords counts central-directory records the way archive/zip would
// read them, stopping past limit. It finds the directory as archive/zip's
// readDirectoryEnd does and counts from both starts that function may
// choose, keeping the larger count, and counts every record with a valid
// signature, of which archive/zip parses no more: the result bounds what
// zip.NewReader allocates.
func zipRecords(r io.ReaderAt, size int64, limit int) (int, error) {
	invalid := func(why string) (int, error) { return 0, newErr(CodeInvalid, "", why, nil) }
	if size < eocdLen {
		return invalid("too short for a zip")
	}
	span := min(size, maxEOCDSpan)
	buf := make([]byte, span)
	if _, err := r.ReadAt(buf, size-span); err != nil && err != io.EOF {
		return 0, err
	}
	p := -1
	for i := len(buf) - eocdLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(buf[i:]) == eocdSig {
			if n := int(binary.LittleEndian.Uint16(buf[i+20:])); n+eocdLen+i > len(buf) {
				return invalid("truncated end of central directory")
			}
			p = i
			break
		}
	}
	if p < 0 {
		return invalid("no end of central directory")
	}
	eocdOff := size - span + int64(p)
	e := buf[p:]
	records := uint64(binary.LittleEndian.Uint16(e[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(e[12:]))
	dirOff := uint64(binary.LittleEndian.Uint32(e[16:]))
	if records == 0xffff || dirSize == 0xffff || dirOff == 0xffffffff {
		if off, ok := zip64End(r, eocdOff); ok {
			var b [eocd64Len]byte
			if off < 0 || off > size-eocd64Len {
				return invalid("zip64 end of central directory out of range")
			}
			if _, err := r.ReadAt(b[:], off); err != nil {
				return invalid("unreadable zip64 end of central directory")
			}
			if binary.LittleEndian.Uint32(b[:]) != eocd64Sig {
				return invalid("bad zip64 end of central directory")
			}
			dirSize = binary.LittleEndian.Uint64(b[40:])
			dirOff = binary.LittleEndian.Uint64(b[48:])
			eocdOff = off
		}
	}
	if dirSize > maxInt64 || dirOff > maxInt64 {
		return invalid("central directory out of range")
	}
	base := eocdOff - int64(dirSize) - int64(dirOff)
	if o := base + int64(dirOff); o < 0 || o >= size {
		return invalid("central directory out of range")
	}
	n := countCentral(r, size, int64(dirOff), limit)
	if base > 0 {
		n = max(n, countCentral(r, size, base+int64(dirOff), limit))
	}
	return n, nil
}

// zip64End reads the zip64 locator just before the end record, as
// archive/zip's findDirectory64End does.
func zip64End(r io.ReaderAt, eocdOff int64) (int64, bool) {
	if eocdOff < loc64Len {
		return 0, false
	}
	var b [loc64Len]byte
	if _, err := r.ReadAt(b[:], eocdOff-loc64Len); err != nil {
		return 0, false
	}
	if binary.LittleEndian.Uint32(b[0:]) != loc64Sig || binary.LittleEndian.Uint32(b[4:]) != 0 ||
		binary.LittleEndian.Uint32(b[16:]) != 1 {
		return 0, false
	}
	off := binary.LittleEndian.Uint64(b[8:])
	if off > maxInt64 {
		return 0, false
	}
	return int64(off), true
}

// countCentral counts consecutive central-directory records from off,
// stopping at the first bad signature, the end of the file, or past limit.
func countCentral(r io.ReaderAt, size, off int64, limit int) int {
	if off < 0 || off >= size {
		return 0
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, size-off), 64<<10)
	var h [centralLen]byte
	n := 0
	for n <= limit {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return n
		}
		if binary.LittleEndian.Uint32(h[:]) != centralSig {
			return n
		}
		n++
		skip := int64(binary.LittleEndian.Uint16(h[28:])) + int64(binary.LittleEndian.Uint16(h[30:])) + int64(binary.LittleEndian.Uint16(h[32:]))
		if _, err := br.Discard(int(skip)); err != nil {
			return n
		}
	}
	return n
}
