package preprocess

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

var (
	red   = color.NRGBA{255, 0, 0, 255}
	green = color.NRGBA{0, 255, 0, 255}
	blue  = color.NRGBA{0, 0, 255, 255}
	white = color.NRGBA{255, 255, 255, 255}
)

// regions is the picture in testdata/*.webp: 8x6, left half red, right
// half blue, bottom two rows green.
func regions() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 8, 6))
	for y := 0; y < 6; y++ {
		for x := 0; x < 8; x++ {
			c := red
			if x >= 4 {
				c = blue
			}
			if y >= 4 {
				c = green
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func encode(t testing.TB, img image.Image, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(b *bytes.Buffer, m image.Image) error  { return png.Encode(b, m) }
func encodeBMP(b *bytes.Buffer, m image.Image) error  { return bmp.Encode(b, m) }
func encodeTIFF(b *bytes.Buffer, m image.Image) error { return tiff.Encode(b, m, nil) }
func encodeJPEG(b *bytes.Buffer, m image.Image) error {
	return jpeg.Encode(b, m, &jpeg.Options{Quality: 95})
}
func encodeGIF(b *bytes.Buffer, m image.Image) error {
	return gif.Encode(b, m, &gif.Options{NumColors: 256, Quantizer: nil, Drawer: nil})
}
func encodeTIFFDeflate(b *bytes.Buffer, m image.Image) error {
	return tiff.Encode(b, m, &tiff.Options{Compression: tiff.Deflate, Predictor: true})
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleImages returns one valid file per format and variant.
func sampleImages(t testing.TB) map[string][]byte {
	src := regions()
	gray := image.NewGray(src.Bounds())
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 5)
	}
	pal := image.NewPaletted(src.Bounds(), palette.Plan9)
	for y := 0; y < 6; y++ {
		for x := 0; x < 8; x++ {
			pal.Set(x, y, src.At(x, y))
		}
	}
	return map[string][]byte{
		"png":           encode(t, src, encodePNG),
		"png-gray":      encode(t, gray, encodePNG),
		"jpeg":          encode(t, src, encodeJPEG),
		"jpeg-gray":     encode(t, gray, encodeJPEG),
		"gif":           encode(t, pal, encodeGIF),
		"bmp":           encode(t, src, encodeBMP),
		"tiff":          encode(t, src, encodeTIFF),
		"tiff-deflate":  encode(t, src, encodeTIFFDeflate),
		"webp-lossy":    readTestdata(t, "lossy.webp"),
		"webp-lossless": readTestdata(t, "lossless.webp"),
		"webp-alpha":    readTestdata(t, "alpha.webp"),
	}
}

func near(c color.Color, want color.NRGBA, tol int) bool {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	d := func(a, b uint8) bool { return int(a)-int(b) <= tol && int(b)-int(a) <= tol }
	return d(n.R, want.R) && d(n.G, want.G) && d(n.B, want.B)
}

func TestDecodeEveryFormat(t *testing.T) {
	samples := sampleImages(t)
	for name, data := range samples {
		if strings.HasSuffix(name, "-gray") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			img, format, err := DecodeImage(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Split(name, "-")[0]; format != want {
				t.Errorf("format %q, want %q", format, want)
			}
			if b := img.Bounds(); b.Dx() != 8 || b.Dy() != 6 {
				t.Fatalf("bounds %v", b)
			}
			tol := 0
			if name == "jpeg" || name == "webp-lossy" || name == "webp-alpha" {
				tol = 40
			}
			tl := red
			if name == "webp-alpha" {
				// Transparent; Fill will see white. Its colour under the
				// alpha is kept by -exact, so check through Fill below.
				tl = color.NRGBA{}
			}
			for _, p := range []struct {
				x, y int
				c    color.NRGBA
			}{{1, 1, tl}, {6, 1, blue}, {1, 5, green}, {6, 5, green}} {
				if p.c.A != 0 && !near(img.At(p.x, p.y), p.c, tol) {
					t.Errorf("pixel (%d,%d) = %v, want %v", p.x, p.y, img.At(p.x, p.y), p.c)
				}
			}
			if name == "webp-alpha" {
				s := ImageSpec{Width: 8, Height: 6, Scale: 1, Layout: LayoutNHWC}
				got := fill(t, s, img)
				if r, g, b := got[3*(8+1)], got[3*(8+1)+1], got[3*(8+1)+2]; r < 240 || g < 240 || b < 240 {
					t.Errorf("transparent pixel filled as %v %v %v, want white", r, g, b)
				}
			}
		})
	}
}

func TestDecodeGray(t *testing.T) {
	for _, name := range []string{"png-gray", "jpeg-gray"} {
		img, _, err := DecodeImage(sampleImages(t)[name], 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := img.(*image.Gray); !ok {
			t.Errorf("%s decodes to %T, want *image.Gray", name, img)
		}
	}
}

// exifSegment returns an APP1 segment holding an EXIF block whose IFD0 has
// one Orientation entry of the given TIFF type (3 SHORT, 4 LONG).
func exifSegment(order binary.ByteOrder, orientation uint32, typ uint16) []byte {
	tiffBlock := make([]byte, 8+2+12+4)
	if order == binary.LittleEndian {
		copy(tiffBlock, "II*\x00")
	} else {
		copy(tiffBlock, "MM\x00*")
	}
	order.PutUint32(tiffBlock[4:], 8)
	order.PutUint16(tiffBlock[8:], 1)
	e := tiffBlock[10:]
	order.PutUint16(e, tagOrientation)
	order.PutUint16(e[2:], typ)
	order.PutUint32(e[4:], 1)
	if typ == 3 {
		order.PutUint16(e[8:], uint16(orientation))
	} else {
		order.PutUint32(e[8:], orientation)
	}
	payload := append([]byte("Exif\x00\x00"), tiffBlock...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// spliceAfterSOI inserts segments right after a JPEG's SOI marker.
func spliceAfterSOI(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// quadrants is 64x32 (flat 32x16 blocks survive JPEG): red top-left,
// green top-right, blue bottom-left, white bottom-right.
func quadrants() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 64, 32))
	for y := 0; y < 32; y++ {
		for x := 0; x < 64; x++ {
			c := [2][2]color.NRGBA{{red, green}, {blue, white}}[y/16][x/32]
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

// Where the stored quadrants appear once displayed, written from the
// EXIF definitions (which side the stored row 0 and column 0 end on):
// display top-left, top-right, bottom-left, bottom-right.
var orientationQuadrants = map[int][4]color.NRGBA{
	1: {red, green, blue, white}, // row 0 top, column 0 left
	2: {green, red, white, blue}, // row 0 top, column 0 right
	3: {white, blue, green, red}, // row 0 bottom, column 0 right
	4: {blue, white, red, green}, // row 0 bottom, column 0 left
	5: {red, blue, green, white}, // row 0 left, column 0 top
	6: {blue, red, white, green}, // row 0 right, column 0 top
	7: {white, green, blue, red}, // row 0 right, column 0 bottom
	8: {green, white, red, blue}, // row 0 left, column 0 bottom
}

func TestDecodeJPEGOrientation(t *testing.T) {
	jpg := encode(t, quadrants(), encodeJPEG)
	app0 := []byte{0xff, 0xe0, 0, 7, 'J', 'F', 'I', 'F', 0}
	for o := 1; o <= 8; o++ {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			for _, typ := range []uint16{3, 4} {
				data := spliceAfterSOI(jpg, app0, exifSegment(order, uint32(o), typ))
				img, _, err := DecodeImage(data, 0)
				if err != nil {
					t.Fatalf("orientation %d %v: %v", o, order, err)
				}
				w, h := 64, 32
				if o >= 5 {
					w, h = 32, 64
				}
				if b := img.Bounds(); b != image.Rect(0, 0, w, h) {
					t.Fatalf("orientation %d %v: bounds %v", o, order, b)
				}
				want := orientationQuadrants[o]
				for i, p := range []image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}} {
					if !near(img.At(p.X, p.Y), want[i], 40) {
						t.Errorf("orientation %d %v type %d: pixel %v = %v, want %v", o, order, typ, p, img.At(p.X, p.Y), want[i])
					}
				}
			}
		}
	}
	// Values outside 1..8 and malformed blocks are ignored.
	for _, seg := range [][]byte{
		exifSegment(binary.LittleEndian, 0, 3),
		exifSegment(binary.BigEndian, 9, 3),
		exifSegment(binary.BigEndian, 6, 5),
		exifSegment(binary.LittleEndian, 6, 3)[:20],
	} {
		data := spliceAfterSOI(jpg, seg)
		if seg[3] > byte(len(seg)-2) {
			// the truncated segment: fix its length so the JPEG stays valid
			binary.BigEndian.PutUint16(data[4:], uint16(len(seg)-2))
		}
		img, _, err := DecodeImage(data, 0)
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() != 64 || !near(img.At(16, 8), red, 40) {
			t.Errorf("bad EXIF block changed the image")
		}
	}
}

// grayTIFF hand-writes an uncompressed 8-bit gray TIFF with an optional
// Orientation tag.
func grayTIFF(order binary.ByteOrder, w, h int, pix []byte, orientation int) []byte {
	type entry struct {
		tag, typ uint16
		val      uint32
	}
	dataOff := 8
	ifdOff := dataOff + len(pix) + len(pix)%2
	entries := []entry{
		{256, 3, uint32(w)}, {257, 3, uint32(h)}, {258, 3, 8}, {259, 3, 1},
		{262, 3, 1}, {273, 4, uint32(dataOff)},
	}
	if orientation > 0 {
		entries = append(entries, entry{274, 3, uint32(orientation)})
	}
	entries = append(entries, entry{277, 3, 1}, entry{278, 3, uint32(h)}, entry{279, 4, uint32(len(pix))})
	b := make([]byte, ifdOff+2+12*len(entries)+4)
	if order == binary.LittleEndian {
		copy(b, "II*\x00")
	} else {
		copy(b, "MM\x00*")
	}
	order.PutUint32(b[4:], uint32(ifdOff))
	copy(b[dataOff:], pix)
	order.PutUint16(b[ifdOff:], uint16(len(entries)))
	for i, e := range entries {
		p := b[ifdOff+2+12*i:]
		order.PutUint16(p, e.tag)
		order.PutUint16(p[2:], e.typ)
		order.PutUint32(p[4:], 1)
		if e.typ == 3 {
			order.PutUint16(p[8:], uint16(e.val))
		} else {
			order.PutUint32(p[8:], e.val)
		}
	}
	return b
}

func pixelsOf(t *testing.T, img image.Image) [][]uint8 {
	t.Helper()
	b := img.Bounds()
	rows := make([][]uint8, b.Dy())
	for y := range rows {
		rows[y] = make([]uint8, b.Dx())
		for x := range rows[y] {
			rows[y][x] = color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
		}
	}
	return rows
}

// The stored 3x2 picture [1 2 3; 4 5 6] displayed under each orientation,
// written out by hand.
var orientedGray = map[int][][]uint8{
	1: {{1, 2, 3}, {4, 5, 6}},
	2: {{3, 2, 1}, {6, 5, 4}},
	3: {{6, 5, 4}, {3, 2, 1}},
	4: {{4, 5, 6}, {1, 2, 3}},
	5: {{1, 4}, {2, 5}, {3, 6}},
	6: {{4, 1}, {5, 2}, {6, 3}},
	7: {{6, 3}, {5, 2}, {4, 1}},
	8: {{3, 6}, {2, 5}, {1, 4}},
}

func TestDecodeTIFFOrientation(t *testing.T) {
	for o := 0; o <= 8; o++ {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			img, format, err := DecodeImage(grayTIFF(order, 3, 2, []byte{1, 2, 3, 4, 5, 6}, o), 0)
			if err != nil {
				t.Fatalf("orientation %d %v: %v", o, order, err)
			}
			if format != FormatTIFF {
				t.Fatalf("format %q", format)
			}
			want := orientedGray[max(o, 1)]
			if got := pixelsOf(t, img); !equalRows(got, want) {
				t.Errorf("orientation %d %v: %v, want %v", o, order, got, want)
			}
		}
	}
}

func equalRows(a, b [][]uint8) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestOrientPixelTypes runs every copy loop of orient on the same picture.
func TestOrientPixelTypes(t *testing.T) {
	r := image.Rect(5, 7, 8, 9) // 3x2, off the origin
	vals := []uint8{1, 2, 3, 4, 5, 6}
	imgs := map[string]image.Image{}
	gray, rgba, nrgba, gray16 := image.NewGray(r), image.NewRGBA(r), image.NewNRGBA(r), image.NewGray16(r)
	pal := image.NewPaletted(r, make(color.Palette, 7))
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	for i, v := range vals {
		x, y := r.Min.X+i%3, r.Min.Y+i/3
		g := color.Gray{v}
		gray.Set(x, y, g)
		rgba.Set(x, y, g)
		nrgba.Set(x, y, g)
		gray16.Set(x, y, g)
		pal.Palette[v] = g
		pal.SetColorIndex(x, y, v)
		ycc.Y[ycc.YOffset(x, y)] = v
	}
	pal.Palette[0] = color.Gray{0}
	imgs["gray"], imgs["rgba"], imgs["nrgba"], imgs["gray16"], imgs["paletted"], imgs["ycbcr"] = gray, rgba, nrgba, gray16, pal, ycc
	for name, img := range imgs {
		for o := 0; o <= 9; o++ {
			want := orientedGray[1] // 0 and 9 are not orientations: unchanged
			if o >= 1 && o <= 8 {
				want = orientedGray[o]
			}
			if got := pixelsOf(t, orient(img, o)); !equalRows(got, want) {
				t.Errorf("%s orientation %d: %v, want %v", name, o, got, want)
			}
		}
	}
}

// pngHeaderOnly is a PNG signature and an IHDR chunk claiming w x h RGBA,
// with a valid CRC, and then one tiny IDAT: a decompression bomb's shape.
func pngHeaderOnly(w, h uint32) []byte {
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		b = append(b, typ...)
		b = append(b, data...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, chunk("IHDR", ihdr)...)
	b = append(b, chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(b, chunk("IEND", nil)...)
}

// bombs returns headers that claim huge images, one per format.
func bombs(t testing.TB) map[string][]byte {
	s := sampleImages(t)
	out := map[string][]byte{
		"png 100000x100000": pngHeaderOnly(100000, 100000),
		"png 60000x60000":   pngHeaderOnly(60000, 60000),
		"png 1x2^31-1":      pngHeaderOnly(1, 1<<31-1),
	}
	// GIF: logical screen and the first frame's size.
	g := append([]byte{}, s["gif"]...)
	binary.LittleEndian.PutUint16(g[6:], 60000)
	binary.LittleEndian.PutUint16(g[8:], 60000)
	out["gif 60000x60000"] = g
	// BMP: width and height in the info header.
	b := append([]byte{}, s["bmp"]...)
	binary.LittleEndian.PutUint32(b[18:], 60000)
	binary.LittleEndian.PutUint32(b[22:], 60000)
	out["bmp 60000x60000"] = b
	// JPEG: the SOF0 frame size.
	j := append([]byte{}, s["jpeg"]...)
	i := bytes.Index(j, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(j[i+5:], 60000)
	binary.BigEndian.PutUint16(j[i+7:], 60000)
	out["jpeg 60000x60000"] = j
	// TIFF: ImageWidth and ImageLength as LONGs.
	tf := grayTIFF(binary.LittleEndian, 3, 2, []byte{1, 2, 3, 4, 5, 6}, 0)
	ifd := int(binary.LittleEndian.Uint32(tf[4:]))
	for k := 0; k < 2; k++ {
		e := tf[ifd+2+12*k:]
		binary.LittleEndian.PutUint16(e[2:], 4)
		binary.LittleEndian.PutUint32(e[8:], 60000)
	}
	out["tiff 60000x60000"] = tf
	// WebP lossless: 14-bit width-1 and height-1 after the 0x2f signature.
	wb := append([]byte{}, s["webp-lossless"]...)
	v := binary.LittleEndian.Uint32(wb[21:])
	binary.LittleEndian.PutUint32(wb[21:], v&^(1<<28-1)|16383|16383<<14)
	out["webp 16384x16384"] = wb
	return out
}

func TestDecodeBombRefusedBeforeDecoding(t *testing.T) {
	for name, data := range bombs(t) {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := DecodeImage(data, 0)
			runtime.ReadMemStats(&after)
			if CodeOf(err) != CodeTooLarge {
				t.Fatalf("err %v, want %s", err, CodeTooLarge)
			}
			// Decoding would take gigabytes; the header check takes a few
			// kilobytes at most.
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("allocated %d bytes before refusing", n)
			}
		})
	}
}

func TestDecodePixelCap(t *testing.T) {
	data := sampleImages(t)["png"] // 48 pixels
	if _, _, err := DecodeImage(data, 47); CodeOf(err) != CodeTooLarge {
		t.Errorf("cap 47: err %v, want %s", err, CodeTooLarge)
	}
	if _, _, err := DecodeImage(data, 48); err != nil {
		t.Errorf("cap 48: %v", err)
	}
	// A side over MaxDimension is refused whatever the pixel cap.
	if _, _, err := DecodeImage(pngHeaderOnly(MaxDimension+1, 1), 1<<40); CodeOf(err) != CodeTooLarge {
		t.Errorf("%d pixels wide: err %v, want %s", MaxDimension+1, err, CodeTooLarge)
	}
}

func TestDecodeBadBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(name string, data []byte) {
		t.Helper()
		img, _, err := DecodeImage(data, 1<<20)
		if err == nil {
			if img == nil || img.Bounds().Empty() {
				t.Errorf("%s: no error and no image", name)
			}
			return
		}
		switch CodeOf(err) {
		case CodeInvalidImage, CodeUnsupported, CodeTooLarge:
		default:
			t.Errorf("%s: error %v has no input code", name, err)
		}
	}
	for name, data := range sampleImages(t) {
		for n := 0; n < len(data); n++ {
			check(name+" truncated", data[:n])
		}
		for i := 0; i < 200; i++ {
			d := append([]byte{}, data...)
			for k := 0; k < 1+i%8; k++ {
				d[rng.IntN(len(d))] = byte(rng.Uint32())
			}
			check(name+" corrupted", d)
			junk := make([]byte, rng.IntN(300))
			for k := range junk {
				junk[k] = byte(rng.Uint32())
			}
			check(name+" random tail", append(append([]byte{}, data[:min(len(data), 16)]...), junk...))
		}
	}
	for _, c := range []struct {
		data []byte
		code string
	}{
		{nil, CodeInvalidImage},
		{[]byte("hello"), CodeInvalidImage},
		{[]byte("\x00\x00\x00\x1cftypavif"), CodeUnsupported},
		{[]byte("\x00\x00\x00\x18ftypheic"), CodeUnsupported},
		{[]byte("8BPS\x00\x01"), CodeUnsupported},
		{[]byte("<svg xmlns='http://www.w3.org/2000/svg'/>"), CodeUnsupported},
		{[]byte("P6\n1 1\n255\n\x00\x00\x00"), CodeUnsupported},
		{[]byte("\xff\xd8\xff"), CodeInvalidImage},
		{[]byte("GIF89a"), CodeInvalidImage},
		{[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), CodeInvalidImage},
		{pngHeaderOnly(0, 5), CodeInvalidImage},
	} {
		if _, _, err := DecodeImage(c.data, 0); CodeOf(err) != c.code {
			t.Errorf("%q: err %v, want %s", c.data, err, c.code)
		}
	}
	// A TIFF variant x/image/tiff does not read: JPEG compression (7).
	tf := grayTIFF(binary.BigEndian, 3, 2, []byte{1, 2, 3, 4, 5, 6}, 0)
	ifd := int(binary.BigEndian.Uint32(tf[4:]))
	binary.BigEndian.PutUint16(tf[ifd+2+12*3+8:], 7)
	if _, _, err := DecodeImage(tf, 0); CodeOf(err) != CodeUnsupported {
		t.Errorf("JPEG-in-TIFF: err %v, want %s", err, CodeUnsupported)
	}
}

func TestRecoverDecoder(t *testing.T) {
	err := recoverDecoder(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v", err)
	}
	if e := decodeError("png", "data", err); e.Code != CodeInvalidImage {
		t.Errorf("code %q", e.Code)
	}
}

func TestReadInput(t *testing.T) {
	data, err := ReadInput(strings.NewReader("12345"), 5)
	if err != nil || string(data) != "12345" {
		t.Errorf("5 of 5: %q %v", data, err)
	}
	if _, err := ReadInput(strings.NewReader("123456"), 5); CodeOf(err) != CodeTooLarge {
		t.Errorf("6 of 5: err %v, want %s", err, CodeTooLarge)
	}
	if _, err := ReadInput(iotestErrReader{}, 5); err == nil || CodeOf(err) != "" {
		t.Errorf("read error: %v, want an error without a code", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }
