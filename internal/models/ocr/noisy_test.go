package ocr

import (
	"image"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/pages"
)

// noisySets are the page sets of the noisy-scan measurements: each
// spoils pages of both fonts at 14, 18 and 24 px.
var noisySets = []struct {
	name string
	scan pages.Scan
}{
	{"clean", pages.Plain},
	{"jpeg30", pages.JPEG(30)},
	{"blur+jpeg40", pages.Chain(pages.Blur, pages.JPEG(40))},
	{"lowcontrast+jpeg35", pages.Chain(pages.LowContrast, pages.JPEG(35))},
	{"rot1.5+jpeg40", pages.Chain(pages.Rotate(1.5), pages.JPEG(40))},
}

// readPageVariants reads a page once (detection and recognition) and
// decodes each line's output with every variant.
func readPageVariants(t testing.TB, det, rec Runner, img image.Image, variants []decodeFunc) [][]string {
	t.Helper()
	regions := readImageProbs(t, det, rec, img)
	out := make([][]string, len(variants))
	for v, dec := range variants {
		for _, r := range regions {
			if text, score := dec(r.probs, r.T, r.C, r.ink); text != "" && score >= DefaultParams().DropScore {
				out[v] = append(out[v], text)
			}
		}
	}
	return out
}

// TestRecognizeNoisyPagesCER measures, per page set, the character error
// rate of the multilingual decoding, of the Latin constraint, of the
// Latin constraint with FixCase, and of the recognizer pruned to the Latin
// classes (with FixCase), and holds the last two at most 3% on every set.
func TestRecognizeNoisyPagesCER(t *testing.T) {
	det, rec, dict := realModels(t)
	latin := LatinClasses(dict)
	rule := DefaultSpaceRule()
	variants := []decodeFunc{
		func(p []float32, T, C int, _ lineInk) (string, float32) { return DecodeCTC(p, T, C, dict, nil, rule) },
		func(p []float32, T, C int, _ lineInk) (string, float32) { return DecodeCTC(p, T, C, dict, latin, rule) },
		func(p []float32, T, C int, _ lineInk) (string, float32) {
			s, sc := DecodeCTC(p, T, C, dict, latin, rule)
			return FixCase(s), sc
		},
	}
	names := []string{"all", "latin", "latin+case", "latin head"}
	// The last variant reads the page again through the recognizer
	// pruned to the Latin classes (PruneHead), as the zoo's ocr model
	// does, and decodes as the pipeline does.
	pruned := latinRec(t)
	headRead := headDecoder(dict, latin, rule)
	viaHead := func(p []float32, T, C int, ink lineInk) (string, float32) {
		s, sc := headRead(p, T, C, ink)
		return FixCase(s), sc
	}
	fonts := []struct {
		name string
		ttf  []byte
	}{{"regular", goregular.TTF}, {"mono", gomono.TTF}}
	t.Logf("%-20s %8s %8s %10s %10s %6s", "set", names[0], names[1], names[2], names[3], "chars")
	for _, set := range noisySets {
		edits := make([]int, len(variants)+1)
		chars := 0
		for _, f := range fonts {
			for si, size := range []float64{14, 18, 24} {
				want := pages.NoisyLines[si%len(pages.NoisyLines)]
				img, err := set.scan(renderPage(t, f.ttf, size, want))
				if err != nil {
					t.Fatal(err)
				}
				got := readPageVariants(t, det, rec, img, variants)
				got = append(got, readPageVariants(t, det, pruned, img, []decodeFunc{viaHead})...)
				for v := range got {
					// Joined, because the detector may cut a line in two at
					// a wide gap.
					e, n := levenshtein(strings.Join(got[v], " "), strings.Join(want, " ")), len([]rune(strings.Join(want, " ")))
					edits[v] += e
					if v == 0 {
						chars += n
					}
					if v >= len(variants)-1 && e > 0 {
						t.Logf("  %s %s %s %v: %q", names[v], set.name, f.name, size, got[v])
					}
				}
			}
		}
		cer := func(v int) float64 { return 100 * float64(edits[v]) / float64(chars) }
		t.Logf("%-20s %7.2f%% %7.2f%% %9.2f%% %9.2f%% %6d", set.name, cer(0), cer(1), cer(2), cer(3), chars)
		for _, v := range []int{2, 3} {
			if cer(v) > 3 {
				t.Errorf("%s: CER %.2f%% with %s, want at most 3%%", set.name, cer(v), names[v])
			}
		}
	}
}
