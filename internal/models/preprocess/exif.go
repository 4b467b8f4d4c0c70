package preprocess

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
)

const tagOrientation = 0x0112

// jpegOrientation returns the EXIF orientation (1..8) of a JPEG, or 0 when
// it has none. It walks the marker segments up to the first scan and reads
// the first APP1 segment that starts with the Exif identifier.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xff || data[1] != 0xd8 {
		return 0
	}
	p := 2
	for p+4 <= len(data) {
		if data[p] != 0xff {
			return 0
		}
		marker := data[p+1]
		switch {
		case marker == 0xff: // fill byte
			p++
			continue
		case marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7): // no length
			p += 2
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image
			return 0
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 || p+2+n > len(data) {
			return 0
		}
		seg := data[p+4 : p+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		p += 2 + n
	}
	return 0
}

// tiffOrientation returns the Orientation tag (1..8) of the first IFD of a
// TIFF structure (a TIFF file or an EXIF block), or 0 when it is absent,
// out of range or the structure is malformed.
func tiffOrientation(b []byte) int {
	if len(b) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(b[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := uint64(bo.Uint32(b[4:]))
	if off+2 > uint64(len(b)) {
		return 0
	}
	n := uint64(bo.Uint16(b[off:]))
	for i := uint64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > uint64(len(b)) {
			return 0
		}
		entry := b[e : e+12]
		if bo.Uint16(entry) != tagOrientation {
			continue
		}
		var v uint32
		switch typ, count := bo.Uint16(entry[2:]), bo.Uint32(entry[4:]); {
		case count != 1:
			return 0
		case typ == 3: // SHORT, stored in the first two bytes of the value field
			v = uint32(bo.Uint16(entry[8:]))
		case typ == 4: // LONG, written by a few non-conforming tools
			v = bo.Uint32(entry[8:])
		default:
			return 0
		}
		if v >= 1 && v <= 8 {
			return int(v)
		}
		return 0
	}
	return 0
}

// orientedPoint maps a point of the upright (displayed) image to the stored
// image of size w x h, for EXIF orientation o. The EXIF definitions: 2
// mirrors left-right, 3 rotates 180°, 4 mirrors top-bottom, 5 transposes,
// 6 is stored rotated 90° counter-clockwise (displayed after turning it
// clockwise), 7 transverses, 8 is stored rotated 90° clockwise.
func orientedPoint(o, x, y, w, h int) (sx, sy int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

// orient returns img turned upright for EXIF orientation o; 0, 1 and
// unknown values return img itself. The copy keeps the pixel type for
// the common decoder outputs (a JPEG's YCbCr becomes 4:4:4 YCbCr, so no
// chroma sample is shifted) and is NRGBA otherwise.
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	r := image.Rect(0, 0, dw, dh)
	each := func(f func(x, y, sx, sy int)) {
		for y := 0; y < dh; y++ {
			for x := 0; x < dw; x++ {
				sx, sy := orientedPoint(o, x, y, w, h)
				f(x, y, sx+b.Min.X, sy+b.Min.Y)
			}
		}
	}
	switch m := img.(type) {
	case *image.YCbCr:
		d := image.NewYCbCr(r, image.YCbCrSubsampleRatio444)
		each(func(x, y, sx, sy int) {
			i, yi, ci := y*d.YStride+x, m.YOffset(sx, sy), m.COffset(sx, sy)
			d.Y[i], d.Cb[i], d.Cr[i] = m.Y[yi], m.Cb[ci], m.Cr[ci]
		})
		return d
	case *image.Gray:
		d := image.NewGray(r)
		each(func(x, y, sx, sy int) { d.Pix[y*d.Stride+x] = m.Pix[m.PixOffset(sx, sy)] })
		return d
	case *image.Paletted:
		d := image.NewPaletted(r, m.Palette)
		each(func(x, y, sx, sy int) { d.Pix[y*d.Stride+x] = m.Pix[m.PixOffset(sx, sy)] })
		return d
	case *image.RGBA:
		d := image.NewRGBA(r)
		each(func(x, y, sx, sy int) { copy(d.Pix[y*d.Stride+4*x:][:4], m.Pix[m.PixOffset(sx, sy):]) })
		return d
	case *image.NRGBA:
		d := image.NewNRGBA(r)
		each(func(x, y, sx, sy int) { copy(d.Pix[y*d.Stride+4*x:][:4], m.Pix[m.PixOffset(sx, sy):]) })
		return d
	}
	d := image.NewNRGBA(r)
	each(func(x, y, sx, sy int) { d.SetNRGBA(x, y, color.NRGBAModel.Convert(img.At(sx, sy)).(color.NRGBA)) })
	return d
}
