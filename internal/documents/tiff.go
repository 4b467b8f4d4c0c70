package documents

import (
	"bytes"
	"context"
	"encoding/binary"

	"github.com/inferq/inferq/internal/models/preprocess"
)

// tiffDoc is a TIFF whose pages are its IFDs, in chain order. A page is
// decoded by pointing a copy of the header at its IFD: offsets in a TIFF
// are from the start of the file, so the rest stays valid, and the image
// decoder (which reads only the first IFD) reads that page.
type tiffDoc struct {
	data    []byte
	scratch []byte
	ifds    []uint32
	lim     Limits
}

func openTIFF(data []byte, lim Limits) (*tiffDoc, error) {
	if len(data) < 8 {
		return nil, errorf(CodeUndecodable, 0, "TIFF header cut short")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if data[0] == 'M' {
		bo = binary.BigEndian
	}
	d := &tiffDoc{data: data, lim: lim}
	seen := map[uint32]bool{}
	// Walk the IFD chain; a loop or an offset past the end is a corrupt
	// file, and more IFDs than the page cap is refused before any decode.
	for off := bo.Uint32(data[4:8]); off != 0; {
		if seen[off] || int64(off)+2 > int64(len(data)) {
			return nil, errorf(CodeUndecodable, 0, "TIFF directory chain is broken at offset %d", off)
		}
		seen[off] = true
		if len(d.ifds) == lim.MaxPages {
			return nil, errorf(CodeTooManyPages, 0, "the document has more than %d pages (INFERQ_MAX_PAGES)", lim.MaxPages)
		}
		d.ifds = append(d.ifds, off)
		n := int64(bo.Uint16(data[off:]))
		next := int64(off) + 2 + 12*n
		if next+4 > int64(len(data)) {
			return nil, errorf(CodeUndecodable, 0, "TIFF directory at offset %d cut short", off)
		}
		off = bo.Uint32(data[next:])
	}
	if len(d.ifds) == 0 {
		return nil, errorf(CodeUndecodable, 0, "TIFF has no pages")
	}
	return d, nil
}

func (d *tiffDoc) Pages() int { return len(d.ifds) }

func (d *tiffDoc) Page(_ context.Context, n int, _ bool) (Page, error) {
	if n < 1 || n > len(d.ifds) {
		return Page{}, errorf(CodeUndecodable, n, "no such page")
	}
	// One copy of the file serves every page: only its header changes.
	if d.scratch == nil {
		d.scratch = bytes.Clone(d.data)
	}
	one := d.scratch
	if one[0] == 'M' {
		binary.BigEndian.PutUint32(one[4:], d.ifds[n-1])
	} else {
		binary.LittleEndian.PutUint32(one[4:], d.ifds[n-1])
	}
	img, _, err := preprocess.DecodeImage(one, int64(d.lim.MaxPixels))
	if err != nil {
		code := CodeUndecodable
		if preprocess.CodeOf(err) == preprocess.CodeTooLarge {
			code = CodePageTooLarge
		}
		return Page{}, errorf(code, n, "%v", err)
	}
	return Page{Number: n, Source: SourceOCR, Image: img}, nil
}

func (d *tiffDoc) Close() error { return nil }
