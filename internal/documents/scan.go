package documents

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"

	"github.com/klippa-app/go-pdfium/enums"
	"github.com/klippa-app/go-pdfium/requests"
)

// scannedImage is the scanned-page fast path: where page n is one image
// that covers the page, its pixels are taken from the PDF, not rendered.
// Rendering a scanned A4 page in wasm takes ~300 ms; decoding its image
// takes a few ms (docs/models.md). ok is false where the page is not such
// a page, or is one this path does not handle; the caller then renders it.
// dpi is the resolution the page would render at (dpiFor).
//
// The rule: the page has no /Rotate and exactly one page object, an
// image drawn upright (no rotation, skew or flip) with no transparency,
// covering at least 95% of the page box in each direction; its samples
// are 8-bit gray or RGB (DeviceGray, DeviceRGB, or ICCBased with that
// many bits, its profile ignored), either behind non-image filters only
// (Flate, LZW, ASCII, RunLength: pdfium undoes them) or as one
// DCTDecode stream (Go's image/jpeg decodes it); its native resolution
// is at least 90% of dpi (a coarser scan is left to the renderer, which
// upsamples it), and width*height*samples fits in 4*MaxPixels bytes
// (the renderer's own BGRA budget) before pdfium is asked for the data.
// An image finer than 1.25*dpi, or over MaxPixels, is box-averaged down
// to dpi, the resolution the recognizer was tuned at. What pdfium's API
// does not show is not checked: an image's own /SMask or color-key /Mask
// (FPDFPageObj_HasTransparency sees only the graphics state) and a /Decode
// array; such an image is read as its bare samples.
func (d *pdfDoc) scannedImage(ref requests.Page, dpi int, wPt, hPt float64) (img *image.Gray, ok bool, err error) {
	rot, err := d.inst.FPDFPage_GetRotation(&requests.FPDFPage_GetRotation{Page: ref})
	if err != nil || rot.PageRotation != enums.FPDF_PAGE_ROTATION_NONE {
		return nil, false, err
	}
	cnt, err := d.inst.FPDFPage_CountObjects(&requests.FPDFPage_CountObjects{Page: ref})
	if err != nil || cnt.Count != 1 {
		return nil, false, err
	}
	o, err := d.inst.FPDFPage_GetObject(&requests.FPDFPage_GetObject{Page: ref, Index: 0})
	if err != nil {
		return nil, false, err
	}
	obj := o.PageObject
	typ, err := d.inst.FPDFPageObj_GetType(&requests.FPDFPageObj_GetType{PageObject: obj})
	if err != nil || typ.Type != enums.FPDF_PAGEOBJ_IMAGE {
		return nil, false, err
	}
	m, err := d.inst.FPDFPageObj_GetMatrix(&requests.FPDFPageObj_GetMatrix{PageObject: obj})
	if err != nil || !(m.Matrix.A > 0 && m.Matrix.D > 0 && m.Matrix.B == 0 && m.Matrix.C == 0) {
		return nil, false, err
	}
	tr, err := d.inst.FPDFPageObj_HasTransparency(&requests.FPDFPageObj_HasTransparency{PageObject: obj})
	if err != nil || tr.HasTransparency {
		return nil, false, err
	}
	box, err := d.inst.FPDF_GetPageBoundingBox(&requests.FPDF_GetPageBoundingBox{Page: ref})
	if err != nil {
		return nil, false, err
	}
	b, err := d.inst.FPDFPageObj_GetBounds(&requests.FPDFPageObj_GetBounds{PageObject: obj})
	if err != nil {
		return nil, false, err
	}
	// The part of the image inside the page box.
	cw := math.Min(float64(b.Right), float64(box.Rect.Right)) - math.Max(float64(b.Left), float64(box.Rect.Left))
	ch := math.Min(float64(b.Top), float64(box.Rect.Top)) - math.Max(float64(b.Bottom), float64(box.Rect.Bottom))
	if cw < 0.95*wPt || ch < 0.95*hPt {
		return nil, false, nil
	}
	md, err := d.inst.FPDFImageObj_GetImageMetadata(&requests.FPDFImageObj_GetImageMetadata{ImageObject: obj, Page: ref})
	if err != nil {
		return nil, false, err
	}
	meta := md.ImageMetadata
	w, h := int(meta.Width), int(meta.Height)
	var samples int
	switch {
	case meta.BitsPerPixel == 8 && (meta.Colorspace == enums.FPDF_COLORSPACE_DEVICEGRAY || meta.Colorspace == enums.FPDF_COLORSPACE_ICCBASED):
		samples = 1
	case meta.BitsPerPixel == 24 && (meta.Colorspace == enums.FPDF_COLORSPACE_DEVICERGB || meta.Colorspace == enums.FPDF_COLORSPACE_ICCBASED):
		samples = 3
	default:
		return nil, false, nil
	}
	if w <= 0 || h <= 0 || w > 1<<16 || h > 1<<16 || w*h*samples > 4*d.lim.MaxPixels {
		return nil, false, nil
	}
	// The image's own resolution on the page, the lower of its two axes.
	native := math.Min(float64(w)/(float64(b.Right-b.Left)/72), float64(h)/(float64(b.Top-b.Bottom)/72))
	if native < 0.9*float64(dpi) {
		return nil, false, nil
	}
	fc, err := d.inst.FPDFImageObj_GetImageFilterCount(&requests.FPDFImageObj_GetImageFilterCount{ImageObject: obj})
	if err != nil {
		return nil, false, err
	}
	jpegData := false
	for i := 0; i < fc.Count; i++ {
		f, err := d.inst.FPDFImageObj_GetImageFilter(&requests.FPDFImageObj_GetImageFilter{ImageObject: obj, Index: i})
		if err != nil {
			return nil, false, err
		}
		switch f.ImageFilter {
		case "FlateDecode", "Fl", "LZWDecode", "LZW", "ASCIIHexDecode", "AHx", "ASCII85Decode", "A85", "RunLengthDecode", "RL":
		case "DCTDecode", "DCT":
			if fc.Count != 1 {
				return nil, false, nil
			}
			jpegData = true
		default:
			return nil, false, nil
		}
	}
	var g *image.Gray
	if jpegData {
		raw, err := d.inst.FPDFImageObj_GetImageDataRaw(&requests.FPDFImageObj_GetImageDataRaw{ImageObject: obj})
		if err != nil {
			return nil, false, err
		}
		if g = decodeJPEG(raw.Data, w, h); g == nil {
			return nil, false, nil
		}
	} else {
		dec, err := d.inst.FPDFImageObj_GetImageDataDecoded(&requests.FPDFImageObj_GetImageDataDecoded{ImageObject: obj})
		if err != nil {
			return nil, false, err
		}
		if len(dec.Data) != w*h*samples {
			return nil, false, nil
		}
		g = image.NewGray(image.Rect(0, 0, w, h))
		if samples == 1 {
			copy(g.Pix, dec.Data)
		} else {
			for i := range g.Pix {
				r, gg, bb := int(dec.Data[3*i]), int(dec.Data[3*i+1]), int(dec.Data[3*i+2])
				g.Pix[i] = uint8((r*30 + gg*59 + bb*11) / 100) // pdfium's own gray
			}
		}
	}
	if native > 1.25*float64(dpi) || w*h > d.lim.MaxPixels {
		s := float64(dpi) / native
		g = boxDown(g, max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s))))
	}
	return g, true, nil
}

// decodeJPEG decodes a DCTDecode stream of w x h pixels to gray: a
// one-component JPEG as it is, a YCbCr one by its Y plane. Anything else
// (CMYK, other dimensions than the PDF says, a broken stream) is nil.
func decodeJPEG(data []byte, w, h int) *image.Gray {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width != w || cfg.Height != h {
		return nil
	}
	im, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	var pix []byte
	var stride int
	switch im := im.(type) {
	case *image.Gray:
		pix, stride = im.Pix, im.Stride
	case *image.YCbCr:
		pix, stride = im.Y, im.YStride
	default:
		return nil
	}
	// The decoder's rows run to whole blocks: copy into a tight image.
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		copy(g.Pix[y*w:(y+1)*w], pix[y*stride:y*stride+w])
	}
	return g
}

// boxDown scales src down to w x h, each pixel the mean of the source
// pixels it covers.
func boxDown(src *image.Gray, w, h int) *image.Gray {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	if w >= sw && h >= sh {
		return src
	}
	dst := image.NewGray(image.Rect(0, 0, w, h))
	sum := make([]int, w)
	cnt := make([]int, w)
	x0 := make([]int, w+1)
	for x := 0; x <= w; x++ {
		x0[x] = x * sw / w
	}
	for y := 0; y < h; y++ {
		clear(sum)
		clear(cnt)
		for sy := y * sh / h; sy < max((y+1)*sh/h, y*sh/h+1); sy++ {
			row := src.Pix[sy*src.Stride : sy*src.Stride+sw]
			for x := 0; x < w; x++ {
				hi := max(x0[x+1], x0[x]+1)
				for sx := x0[x]; sx < hi; sx++ {
					sum[x] += int(row[sx])
				}
				cnt[x] += hi - x0[x]
			}
		}
		for x := 0; x < w; x++ {
			dst.Pix[y*dst.Stride+x] = uint8((sum[x] + cnt[x]/2) / cnt[x])
		}
	}
	return dst
}
