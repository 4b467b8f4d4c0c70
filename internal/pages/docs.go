package pages

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"strings"
)

// PDFPage is one page of a PDF that PDF writes: Text, set in Helvetica
// (a text layer, as a digital PDF has), or Image, drawn over the whole
// page (a scanned page, with no text layer), at DPI.
type PDFPage struct {
	Text  []string
	Image image.Image
	DPI   float64 // for Image; 0 means 150
	// WPt and HPt are the page box in points; 0 means A4 (595x842).
	WPt, HPt float64
	// JPEG embeds Image as a gray JPEG (DCTDecode) instead of Flate.
	JPEG bool
	// Extra is content-stream operators drawn after the page's image or
	// text, e.g. a line, which makes a scanned page one of two objects.
	Extra string
}

// PDF writes a minimal, valid PDF 1.4 holding pages: the kind of file the
// document tests send, made without any PDF library.
func PDF(pages []PDFPage) []byte {
	var objs []string // object i+1
	add := func(s string) int { objs = append(objs, s); return len(objs) }
	catalog := add("") // filled once the page tree's number is known
	tree := add("")
	font := add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	var kids []string
	for _, p := range pages {
		w, h := p.WPt, p.HPt
		if w == 0 || h == 0 {
			w, h = 595, 842
		}
		var content, res string
		if p.Image != nil {
			dpi := p.DPI
			if dpi == 0 {
				dpi = 150
			}
			b := p.Image.Bounds()
			g := image.NewGray(b)
			draw.Draw(g, b, p.Image, b.Min, draw.Src)
			var z bytes.Buffer
			filter := "FlateDecode"
			if p.JPEG {
				filter = "DCTDecode"
				jpeg.Encode(&z, g, &jpeg.Options{Quality: 90})
			} else {
				zw := zlib.NewWriter(&z)
				for y := 0; y < b.Dy(); y++ {
					zw.Write(g.Pix[y*g.Stride : y*g.Stride+b.Dx()])
				}
				zw.Close()
			}
			img := add(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /%s /Length %d >>\nstream\n%s\nendstream",
				b.Dx(), b.Dy(), filter, z.Len(), z.String()))
			iw, ih := float64(b.Dx())*72/dpi, float64(b.Dy())*72/dpi
			content = fmt.Sprintf("q %.2f 0 0 %.2f 0 %.2f cm /Im0 Do Q", iw, ih, h-ih)
			res = fmt.Sprintf("<< /XObject << /Im0 %d 0 R >> >>", img)
		} else {
			var c strings.Builder
			c.WriteString("BT /F1 12 Tf 72 770 Td 16 TL\n")
			for _, l := range p.Text {
				l = strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(l)
				fmt.Fprintf(&c, "(%s) Tj T*\n", l)
			}
			c.WriteString("ET")
			content = c.String()
			res = fmt.Sprintf("<< /Font << /F1 %d 0 R >> >>", font)
		}
		if p.Extra != "" {
			content += "\n" + p.Extra
		}
		cs := add(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
		pg := add(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %g %g] /Resources %s /Contents %d 0 R >>", tree, w, h, res, cs))
		kids = append(kids, fmt.Sprintf("%d 0 R", pg))
	}
	objs[catalog-1] = fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", tree)
	objs[tree-1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(kids))
	var out bytes.Buffer
	out.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = out.Len()
		fmt.Fprintf(&out, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&out, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, catalog, xref)
	return out.Bytes()
}

// TIFF writes imgs as one multi-page TIFF (little-endian, 8-bit gray,
// uncompressed), one IFD a page, chained in order.
func TIFF(imgs []image.Image) []byte {
	var out bytes.Buffer
	le := binary.LittleEndian
	out.WriteString("II*\x00\x00\x00\x00\x00")
	prevNext := 4 // where the offset of the next IFD goes
	for _, im := range imgs {
		b := im.Bounds()
		g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(g, g.Rect, im, b.Min, draw.Src)
		pixOff := out.Len()
		out.Write(g.Pix)
		if out.Len()%2 == 1 {
			out.WriteByte(0)
		}
		ifd := out.Len()
		le.PutUint32(out.Bytes()[prevNext:], uint32(ifd))
		type entry struct{ tag, typ, n, v uint32 }
		entries := []entry{
			{256, 4, 1, uint32(b.Dx())}, // ImageWidth
			{257, 4, 1, uint32(b.Dy())}, // ImageLength
			{258, 3, 1, 8},              // BitsPerSample
			{259, 3, 1, 1},              // Compression: none
			{262, 3, 1, 1},              // Photometric: BlackIsZero
			{273, 4, 1, uint32(pixOff)}, // StripOffsets
			{277, 3, 1, 1},              // SamplesPerPixel
			{278, 4, 1, uint32(b.Dy())}, // RowsPerStrip
			{279, 4, 1, uint32(len(g.Pix))},
		}
		var buf [12]byte
		binary.Write(&out, le, uint16(len(entries)))
		for _, e := range entries {
			le.PutUint16(buf[0:], uint16(e.tag))
			le.PutUint16(buf[2:], uint16(e.typ))
			le.PutUint32(buf[4:], e.n)
			le.PutUint32(buf[8:], 0)
			if e.typ == 3 {
				le.PutUint16(buf[8:], uint16(e.v))
			} else {
				le.PutUint32(buf[8:], e.v)
			}
			out.Write(buf[:])
		}
		prevNext = out.Len()
		out.Write([]byte{0, 0, 0, 0})
	}
	return out.Bytes()
}
