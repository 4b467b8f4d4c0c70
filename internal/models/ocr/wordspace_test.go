package ocr

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/pages"
)

// spaceLines are the sentences the word-space tests render one at a time:
// the pages package's lines and some more of the same kind.
var spaceLines = append(slices.Concat(pages.Lines...),
	"The quick brown fox jumps over the lazy dog",
	"Payment due within 30 days of the invoice date",
	"Please quote account 88-1204 on all letters",
	"Delivery: 12 boxes, 3 pallets, signed J. Smith",
	"Meeting moved to Tuesday at 10:45 in room B",
	"Total weight 52.3 kg and volume 0.8 m3",
)

// lineProbs renders one line of text alone on a page and runs the
// pipeline over it (detection, crops, recognition), returning each
// detected region's recognizer output, left to right, undecoded.
type lineProbs struct {
	probs []float32
	T, C  int
}

func readLineProbs(t testing.TB, det, rec Runner, ttf []byte, size float64, text string) []lineProbs {
	t.Helper()
	src, err := toRGB(renderPage(t, ttf, size, []string{text}))
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	in, h, w := detInputRGB(src, p.MaxSide)
	outs, err := det.Run(detTensor(in, h, w))
	if err != nil {
		t.Fatal(err)
	}
	quads := Boxes(outs[0].Float32[:h*w], h, w, src.w, src.h, p)
	got := make([]lineProbs, len(quads))
	var k int
	capture := func(probs []float32, T, C int) (string, float32) {
		// recognizeLines decodes in its own order; the index travels in
		// the text and is read back below.
		got[k] = lineProbs{slices.Clone(probs), T, C}
		k++
		return fmt.Sprint(k - 1), 1
	}
	texts, _, err := recognizeLines(src, quads, rec, capture, p.RecBatch)
	if err != nil {
		t.Fatal(err)
	}
	ordered := make([]lineProbs, 0, len(texts))
	for _, s := range texts {
		var i int
		if _, err := fmt.Sscan(s, &i); err == nil {
			ordered = append(ordered, got[i])
		}
	}
	return ordered
}

// decodeLine reads a line's regions with the given space gap and joins
// them with spaces (the detector may cut a line at a wide word gap).
func decodeLine(regions []lineProbs, dict []string, gap float64) string {
	var parts []string
	for _, r := range regions {
		s, _ := DecodeCTC(r.probs, r.T, r.C, dict, gap)
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// TestRecognizeLineCERBySize measures the character error rate, spaces
// included, of single rendered lines at several sizes in both Go fonts,
// decoded with the model's own spaces only and with recovered spaces.
// Run with -v for the table. Recovery must not make any size worse.
func TestRecognizeLineCERBySize(t *testing.T) {
	det, rec, dict := realModels(t)
	sizes := []float64{12, 14, 16, 18, 20, 24, 28, 32, 40}
	fonts := []struct {
		name string
		ttf  []byte
	}{{"regular", goregular.TTF}, {"mono", gomono.TTF}}
	var totOff, totOn, totChars int
	// ratios of centre distance to pitch, for the lines whose characters
	// (spaces aside) read exactly: across a word gap and inside a word.
	var across, inside []float64
	t.Logf("%-4s %-8s %8s %8s %6s %6s", "size", "font", "CER off", "CER on", "lost", "added")
	for _, size := range sizes {
		for _, f := range fonts {
			var eOff, eOn, chars, lost, added int
			for _, want := range spaceLines {
				regions := readLineProbs(t, det, rec, f.ttf, size, want)
				off := decodeLine(regions, dict, -1)
				on := decodeLine(regions, dict, DefaultSpaceGap)
				eOff += levenshtein(off, want)
				eOn += levenshtein(on, want)
				chars += len([]rune(want))
				lost += max(0, strings.Count(want, " ")-strings.Count(on, " "))
				added += max(0, strings.Count(on, " ")-strings.Count(want, " "))
				if on != want {
					t.Logf("  %v %s: off %q on %q want %q", size, f.name, off, on, want)
				}
				if len(regions) == 1 {
					a, i := gapRatios(regions[0], dict, want)
					across, inside = append(across, a...), append(inside, i...)
				}
			}
			totOff += eOff
			totOn += eOn
			totChars += chars
			t.Logf("%-4v %-8s %7.2f%% %7.2f%% %6d %6d", size, f.name, 100*float64(eOff)/float64(chars), 100*float64(eOn)/float64(chars), lost, added)
			if eOn > eOff {
				t.Errorf("%v px %s: %d edits with recovered spaces, %d without", size, f.name, eOn, eOff)
			}
		}
	}
	t.Logf("all: CER off %.2f%%, on %.2f%% (%d chars)", 100*float64(totOff)/float64(totChars), 100*float64(totOn)/float64(totChars), totChars)
	slices.Sort(across)
	slices.Sort(inside)
	if len(across) > 0 && len(inside) > 0 {
		t.Logf("gap/pitch across words (%d): min %.2f p5 %.2f p50 %.2f; inside words (%d): p50 %.2f p99 %.2f max %.2f",
			len(across), across[0], across[len(across)/20], across[len(across)/2],
			len(inside), inside[len(inside)/2], inside[len(inside)*99/100], inside[len(inside)-1])
		t.Logf("inside words over 1.4: %v", inside[sortIndex(inside, 1.4):])
		t.Logf("across words under 2.0: %v", across[:sortIndex(across, 2.0)])
	}
}

func sortIndex(xs []float64, v float64) int {
	i, _ := slices.BinarySearch(xs, v)
	return i
}

// gapRatios labels each pair of consecutive characters of a line read
// with the model's spaces only by whether want has a space between them,
// and returns their centre distances in pitches, when the characters read
// (spaces aside) are exactly want's.
func gapRatios(r lineProbs, dict []string, want string) (across, inside []float64) {
	space := len(dict) + 1
	chars := slices.DeleteFunc(greedyCTC(r.probs, r.T, r.C), func(c ctcChar) bool { return c.class >= space })
	var read strings.Builder
	for _, c := range chars {
		read.WriteString(dict[c.class-1])
	}
	if read.String() != strings.ReplaceAll(want, " ", "") {
		return nil, nil
	}
	var dists []float64
	for i := 0; i+1 < len(chars); i++ {
		dists = append(dists, chars[i+1].centre()-chars[i].centre())
	}
	if len(dists) < minPitchSamples {
		return nil, nil
	}
	pitch := median(slices.Clone(dists))
	gapAfter := map[int]bool{}
	n := 0
	for _, r := range want {
		if r == ' ' {
			gapAfter[n-1] = true
			continue
		}
		n++
	}
	for i, d := range dists {
		if gapAfter[i] {
			across = append(across, d/pitch)
		} else {
			inside = append(inside, d/pitch)
		}
	}
	return across, inside
}
