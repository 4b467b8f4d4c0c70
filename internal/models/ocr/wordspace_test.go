package ocr

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
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
	ink   lineInk
}

func readLineProbs(t testing.TB, det, rec Runner, ttf []byte, size float64, text string) []lineProbs {
	t.Helper()
	return readImageProbs(t, det, rec, renderPage(t, ttf, size, []string{text}))
}

func readImageProbs(t testing.TB, det, rec Runner, img image.Image) []lineProbs {
	t.Helper()
	src, err := toRGB(img)
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
	capture := func(probs []float32, T, C int, ink lineInk) (string, float32) {
		// recognizeLines decodes in its own order; the index travels in
		// the text and is read back below.
		got[k] = lineProbs{slices.Clone(probs), T, C, ink}
		k++
		return fmt.Sprint(k - 1), 1
	}
	texts, _, err := recognizeLines(src, quads, rec, capture, p.RecBatch, p.RecSpread)
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

// decodeLine reads a line's regions with the given rule and joins them
// with spaces (the detector may cut a line at a wide word gap).
func decodeLine(regions []lineProbs, dict []string, rule SpaceRule) string {
	var parts []string
	for _, r := range regions {
		s, _ := DecodeCTC(r.probs, r.T, r.C, dict, nil, rule)
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// TestRecognizeLineCERBySize measures the character error rate, spaces
// included, of single rendered lines at several sizes in both Go fonts,
// decoded three ways: the model's own spaces only; spaces put back by
// distance alone (1.55 pitches, the best distance threshold measured);
// and DefaultSpaceRule. Run with -v for the table and for the space
// class's probabilities that set DefaultSpaceRule. The default must not
// make any size worse than the model's own spaces.
func TestRecognizeLineCERBySize(t *testing.T) {
	det, rec, dict := realModels(t)
	sizes := []float64{12, 14, 16, 18, 20, 24, 28, 32, 40}
	fonts := []struct {
		name string
		ttf  []byte
	}{{"regular", goregular.TTF}, {"mono", gomono.TTF}}
	rules := []SpaceRule{{MinProb: -1, Gap: -1}, {MinProb: -1, Gap: 1.55}, DefaultSpaceRule()}
	tot := make([]int, len(rules))
	var totChars int
	// The space class's peak between consecutive characters of the lines
	// whose characters (spaces aside) read exactly, where the model
	// emitted no space: across a word gap and inside a word.
	var across, inside []float64
	t.Logf("%-4s %-8s %10s %10s %10s %5s %5s", "size", "font", "model", "pitch1.55", "default", "lost", "added")
	for _, size := range sizes {
		for _, f := range fonts {
			edits := make([]int, len(rules))
			var chars, lost, added int
			for _, want := range spaceLines {
				regions := readLineProbs(t, det, rec, f.ttf, size, want)
				var got string
				for i, r := range rules {
					got = decodeLine(regions, dict, r)
					edits[i] += levenshtein(got, want)
				}
				chars += len([]rune(want))
				lost += max(0, strings.Count(want, " ")-strings.Count(got, " "))
				added += max(0, strings.Count(got, " ")-strings.Count(want, " "))
				if got != want {
					t.Logf("  %v %s: model %q default %q want %q", size, f.name, decodeLine(regions, dict, rules[0]), got, want)
				}
				if len(regions) == 1 {
					a, i := spacePeaks(regions[0], dict, want)
					across, inside = append(across, a...), append(inside, i...)
				}
			}
			cer := func(i int) float64 { return 100 * float64(edits[i]) / float64(chars) }
			t.Logf("%-4v %-8s %9.2f%% %9.2f%% %9.2f%% %5d %5d", size, f.name, cer(0), cer(1), cer(2), lost, added)
			for i := range tot {
				tot[i] += edits[i]
			}
			totChars += chars
			if edits[2] > edits[0] {
				t.Errorf("%v px %s: %d edits with recovered spaces, %d without", size, f.name, edits[2], edits[0])
			}
		}
	}
	cer := func(i int) float64 { return 100 * float64(tot[i]) / float64(totChars) }
	t.Logf("all  %-8s %9.2f%% %9.2f%% %9.2f%% (%d chars)", "", cer(0), cer(1), cer(2), totChars)
	slices.Sort(across)
	slices.Sort(inside)
	if len(across) > 0 && len(inside) > 0 {
		t.Logf("space class between characters, where the model emitted none: across %d word gaps min %.4f p5 %.4f p50 %.4f; inside words (%d pairs) p50 %.4f p99 %.4f top 3 %.4f",
			len(across), across[0], across[len(across)/20], across[len(across)/2],
			len(inside), inside[len(inside)/2], inside[len(inside)*99/100], inside[max(0, len(inside)-3):])
	}
}

// spacePeaks labels each pair of consecutive characters of a line, where
// the model emitted no space between them, by whether want has a space
// there, and returns the space class's highest probability from the
// first's last step to the second's first. Only lines whose characters
// (spaces aside) are exactly want's are labelled.
func spacePeaks(r lineProbs, dict []string, want string) (across, inside []float64) {
	space := len(dict) + 1
	all := greedyCTC(r.probs, r.T, r.C, nil)
	var read strings.Builder
	var chars []ctcChar
	emittedAfter := map[int]bool{}
	for _, c := range all {
		switch {
		case c.class == space && len(chars) > 0:
			emittedAfter[len(chars)-1] = true
		case c.class < space:
			read.WriteString(dict[c.class-1])
			chars = append(chars, c)
		}
	}
	if read.String() != strings.ReplaceAll(want, " ", "") {
		return nil, nil
	}
	gapAfter := map[int]bool{}
	n := 0
	for _, ch := range want {
		if ch == ' ' {
			gapAfter[n-1] = true
			continue
		}
		n++
	}
	for i := 0; i+1 < len(chars); i++ {
		if emittedAfter[i] {
			continue
		}
		peak := 0.0
		for t := chars[i].last; t <= chars[i+1].first; t++ {
			peak = max(peak, float64(r.probs[t*r.C+space]))
		}
		if gapAfter[i] {
			across = append(across, peak)
		} else {
			inside = append(inside, peak)
		}
	}
	return across, inside
}

// heldOutLines were not looked at when DefaultSpaceRule was set.
var heldOutLines = []string{
	"Invoice 2041 total 318.50 EUR",
	"Account holder: Maria Gonzalez, Lisbon",
	"Balance carried forward 1,204.77 USD",
	"Return within 14 days for a full refund",
	"Item 4 of 9: steel bolts M8 x 40 mm",
	"Signed by the warehouse manager on duty",
	"Net amount 96.10 plus VAT at 23 percent",
	"Room 12B, second floor, north wing",
	"Do not bend, fold or staple this form",
	"Your parcel will arrive on Monday morning",
}

// TestRecognizeLineCERHeldOut checks DefaultSpaceRule on lines, sizes and
// JPEG damage that played no part in setting it: Go Regular at 13 to 26
// px, clean and saved as JPEG at quality 30. Run with -v for the table.
func TestRecognizeLineCERHeldOut(t *testing.T) {
	det, rec, dict := realModels(t)
	off := SpaceRule{MinProb: -1, Gap: -1}
	var totOff, totOn, totChars int
	// per page kind: clean, JPEG
	var kindOff, kindOn, kindChars [2]int
	t.Logf("%-4s %-6s %8s %8s", "size", "page", "model", "default")
	for _, size := range []float64{13, 15, 17, 22, 26} {
		for _, q := range []int{0, 30} {
			var eOff, eOn, chars int
			for _, want := range heldOutLines {
				var img image.Image = renderPage(t, goregular.TTF, size, []string{want})
				if q > 0 {
					var b bytes.Buffer
					if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
						t.Fatal(err)
					}
					var err error
					if img, err = jpeg.Decode(&b); err != nil {
						t.Fatal(err)
					}
				}
				regions := readImageProbs(t, det, rec, img)
				model, got := decodeLine(regions, dict, off), decodeLine(regions, dict, SpaceRule{})
				eOff += levenshtein(model, want)
				eOn += levenshtein(got, want)
				chars += len([]rune(want))
				if got != want {
					t.Logf("  %v q%d: model %q default %q want %q", size, q, model, got, want)
				}
			}
			page := "clean"
			if q > 0 {
				page = fmt.Sprintf("jpeg%d", q)
			}
			t.Logf("%-4v %-6s %7.2f%% %7.2f%%", size, page, 100*float64(eOff)/float64(chars), 100*float64(eOn)/float64(chars))
			totOff, totOn, totChars = totOff+eOff, totOn+eOn, totChars+chars
			k := min(q, 1)
			kindOff[k], kindOn[k], kindChars[k] = kindOff[k]+eOff, kindOn[k]+eOn, kindChars[k]+chars
		}
	}
	for k, name := range []string{"clean", "jpeg30"} {
		t.Logf("all  %-6s %7.2f%% %7.2f%% (%d chars)", name, 100*float64(kindOff[k])/float64(kindChars[k]), 100*float64(kindOn[k])/float64(kindChars[k]), kindChars[k])
	}
	t.Logf("all         %7.2f%% %7.2f%% (%d chars)", 100*float64(totOff)/float64(totChars), 100*float64(totOn)/float64(totChars), totChars)
	if totOn > totOff {
		t.Errorf("%d edits with recovered spaces, %d without", totOn, totOff)
	}
}

// TestRecognizeWordSpacesSmallType reads pages of small type through the
// whole pipeline (Recognize with DefaultParams) and wants every word
// space: at these sizes the recognizer alone ran words together
// ("Invoice2041total318.50EUR", "Thankyoufor yourbusiness!"), and so did
// make demo's own page (Go Regular, 28 px).
func TestRecognizeWordSpacesSmallType(t *testing.T) {
	det, rec, dict := realModels(t)
	type page struct {
		size  float64
		lines []string
	}
	var set []page
	for _, size := range []float64{14, 16, 18, 20} {
		set = append(set, page{size, pages.Lines[0]}, page{size, spaceLines[8:]})
	}
	set = append(set, page{28, pages.Lines[0]})
	var want, lost, added int
	for _, pg := range set {
		res, err := Recognize(renderPage(t, goregular.TTF, pg.size, pg.lines), det, rec, dict, DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Lines) != len(pg.lines) {
			t.Errorf("%v px: %d lines, want %d: %q", pg.size, len(res.Lines), len(pg.lines), res.Text)
			continue
		}
		for i, l := range res.Lines {
			w, g := strings.Count(pg.lines[i], " "), strings.Count(l.Text, " ")
			want += w
			lost += max(0, w-g)
			added += max(0, g-w)
			if strings.Join(strings.Fields(l.Text), " ") != l.Text || g != w {
				t.Errorf("%v px line %d: %q, want %q (%d word spaces)", pg.size, i, l.Text, pg.lines[i], w)
			}
		}
	}
	t.Logf("%d word spaces: %d lost, %d added", want, lost, added)
}
