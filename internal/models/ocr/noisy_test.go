package ocr

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// noisyLines are held-out lines for the noisy page sets: words with case
// twins in capitals and in small letters, digits beside letters, and
// punctuation the multilingual recognizer likes to read full-width.
var noisyLines = [][]string{
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

// degrade is one way a scan spoils a page.
type degrade struct {
	name string
	fn   func(t testing.TB, img image.Image) image.Image
}

// jpegAt re-encodes the page as JPEG at quality q.
func jpegAt(q int) func(testing.TB, image.Image) image.Image {
	return func(t testing.TB, img image.Image) image.Image {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		out, err := jpeg.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		return out
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

func lum(img image.Image, x, y int) float64 {
	b := img.Bounds()
	x = min(max(x, 0), b.Dx()-1)
	y = min(max(y, 0), b.Dy()-1)
	return float64(color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y)
}

// blur3 is a 3x3 box blur.
func blur3(_ testing.TB, img image.Image) image.Image {
	return grayOf(img, func(x, y int) uint8 {
		var s float64
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				s += lum(img, x+dx, y+dy)
			}
		}
		return uint8(s / 9)
	})
}

// lowContrast squeezes black..white into 110..190.
func lowContrast(_ testing.TB, img image.Image) image.Image {
	return grayOf(img, func(x, y int) uint8 { return uint8(110 + lum(img, x, y)*80/255) })
}

// rotate turns the page by deg degrees about its centre (bilinear, white
// outside).
func rotate(deg float64) func(testing.TB, image.Image) image.Image {
	return func(_ testing.TB, img image.Image) image.Image {
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
		})
	}
}

func chain(fs ...func(testing.TB, image.Image) image.Image) func(testing.TB, image.Image) image.Image {
	return func(t testing.TB, img image.Image) image.Image {
		for _, f := range fs {
			img = f(t, img)
		}
		return img
	}
}

// noisySets are the page sets of the noisy-scan measurements: each
// degradation on both fonts at 14, 18 and 24 px.
var noisySets = []degrade{
	{"clean", func(_ testing.TB, img image.Image) image.Image { return img }},
	{"jpeg30", jpegAt(30)},
	{"blur+jpeg40", chain(blur3, jpegAt(40))},
	{"lowcontrast+jpeg35", chain(lowContrast, jpegAt(35))},
	{"rot1.5+jpeg40", chain(rotate(1.5), jpegAt(40))},
}

// readPageVariants reads a page once (detection and recognition) and
// decodes each line's output with every variant.
func readPageVariants(t testing.TB, det, rec Runner, img image.Image, variants []decodeFunc) [][]string {
	t.Helper()
	regions := readImageProbs(t, det, rec, img)
	out := make([][]string, len(variants))
	for v, dec := range variants {
		for _, r := range regions {
			if text, score := dec(r.probs, r.T, r.C); text != "" && score >= DefaultParams().DropScore {
				out[v] = append(out[v], text)
			}
		}
	}
	return out
}

// TestRecognizeNoisyPagesCER measures, per page set, the character error
// rate of the multilingual decoding, of the Latin constraint, and of the
// Latin constraint with FixCase, and holds the last at most 3% on every
// set.
func TestRecognizeNoisyPagesCER(t *testing.T) {
	det, rec, dict := realModels(t)
	latin := LatinClasses(dict)
	rule := DefaultSpaceRule()
	variants := []decodeFunc{
		func(p []float32, T, C int) (string, float32) { return DecodeCTC(p, T, C, dict, nil, rule) },
		func(p []float32, T, C int) (string, float32) { return DecodeCTC(p, T, C, dict, latin, rule) },
		func(p []float32, T, C int) (string, float32) {
			s, sc := DecodeCTC(p, T, C, dict, latin, rule)
			return FixCase(s), sc
		},
	}
	names := []string{"all", "latin", "latin+case"}
	fonts := []struct {
		name string
		ttf  []byte
	}{{"regular", goregular.TTF}, {"mono", gomono.TTF}}
	t.Logf("%-20s %8s %8s %10s %6s", "set", names[0], names[1], names[2], "chars")
	for _, set := range noisySets {
		edits := make([]int, len(variants))
		chars := 0
		for _, f := range fonts {
			for si, size := range []float64{14, 18, 24} {
				want := noisyLines[si%len(noisyLines)]
				img := set.fn(t, renderPage(t, f.ttf, size, want))
				got := readPageVariants(t, det, rec, img, variants)
				for v := range variants {
					// Joined, because the detector may cut a line in two at
					// a wide gap.
					e, n := levenshtein(strings.Join(got[v], " "), strings.Join(want, " ")), len([]rune(strings.Join(want, " ")))
					edits[v] += e
					if v == 0 {
						chars += n
					}
					if v == len(variants)-1 && e > 0 {
						t.Logf("  %s %s %v: %q", set.name, f.name, size, got[v])
					}
				}
			}
		}
		cer := func(v int) float64 { return 100 * float64(edits[v]) / float64(chars) }
		t.Logf("%-20s %7.2f%% %7.2f%% %9.2f%% %6d", set.name, cer(0), cer(1), cer(2), chars)
		if cer(2) > 3 {
			t.Errorf("%s: CER %.2f%% with the Latin constraint and FixCase, want at most 3%%", set.name, cer(2))
		}
	}
}
