package pages

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
)

// A Scan spoils a page the way a scanner or a phone camera does; the
// noisy page sets of the OCR tests and of the ocr-peer benchmark are
// rendered pages put through Scans.
type Scan func(image.Image) (image.Image, error)

// Chain applies scans in order.
func Chain(scans ...Scan) Scan {
	return func(img image.Image) (image.Image, error) {
		var err error
		for _, s := range scans {
			if img, err = s(img); err != nil {
				return nil, err
			}
		}
		return img, nil
	}
}

// JPEG saves the page as JPEG at quality q and reads it back.
func JPEG(q int) Scan {
	return func(img image.Image) (image.Image, error) {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
			return nil, err
		}
		return jpeg.Decode(&b)
	}
}

// Blur is a 3x3 box blur, in gray.
func Blur(img image.Image) (image.Image, error) {
	return grayOf(img, func(x, y int) uint8 {
		var s float64
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				s += lum(img, x+dx, y+dy)
			}
		}
		return uint8(s / 9)
	}), nil
}

// LowContrast squeezes black..white into 110..190, in gray: faded ink on
// grey paper.
func LowContrast(img image.Image) (image.Image, error) {
	return grayOf(img, func(x, y int) uint8 { return uint8(110 + lum(img, x, y)*80/255) }), nil
}

// Rotate turns the page by deg degrees about its centre (bilinear, in
// gray, white where nothing was).
func Rotate(deg float64) Scan {
	return func(img image.Image) (image.Image, error) {
		b := img.Bounds()
		cx, cy := float64(b.Dx())/2, float64(b.Dy())/2
		s, c := math.Sincos(deg * math.Pi / 180)
		return grayOf(img, func(x, y int) uint8 {
			fx, fy := float64(x)-cx, float64(y)-cy
			sx, sy := c*fx+s*fy+cx, -s*fx+c*fy+cy
			if sx < 0 || sy < 0 || sx > float64(b.Dx()-1) || sy > float64(b.Dy()-1) {
				return 255
			}
			x0, y0 := int(sx), int(sy)
			ax, ay := sx-float64(x0), sy-float64(y0)
			top := lum(img, x0, y0)*(1-ax) + lum(img, x0+1, y0)*ax
			bot := lum(img, x0, y0+1)*(1-ax) + lum(img, x0+1, y0+1)*ax
			return uint8(top*(1-ay) + bot*ay + 0.5)
		}), nil
	}
}

// grayOf maps the page through f, pixel by pixel, in gray.
func grayOf(img image.Image, f func(x, y int) uint8) *image.Gray {
	b := img.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.Pix[y*out.Stride+x] = f(x, y)
		}
	}
	return out
}

// lum is the page's gray level at (x, y), the border replicated.
func lum(img image.Image, x, y int) float64 {
	b := img.Bounds()
	x = min(max(x, 0), b.Dx()-1)
	y = min(max(y, 0), b.Dy()-1)
	return float64(color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y)
}

// NoisyLines are lines for the noisy page sets: words with case twins in
// capitals and in small letters, digits beside letters, and the
// punctuation a Chinese-first recognizer reads full-width.
var NoisyLines = [][]string{
	{
		"WOW: SIZE XL COVERS (2 boxes)",
		"Window cover sold out, see over",
		"Order ID: ZX-0457 / SOS 31",
	},
	{
		"Invoice 5512 due 2025-01-31: 74.20 USD",
		"Colour: violet; volume 0.75 litre",
		"Contact: Oscar Wilde, Vox Street 9",
	},
}

// Plain is the Scan that leaves the page as it is.
func Plain(img image.Image) (image.Image, error) { return img, nil }
