package ocr

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/ort"
	"github.com/inferq/inferq/internal/pages"
)

// derivedModel is a recognizer made from the real one, once.
type derivedModel struct {
	once sync.Once
	rec  *ort.Session
	err  error
}

// prunedModel has only its head pruned to LatinHead (PruneHead);
// latinModel is the recognizer the zoo ships (LatinRecognizer), fastDet
// its detector (FastDetector).
var prunedModel, latinModel, fastDetModel derivedModel

func (m *derivedModel) open(t testing.TB, source string, make func(src []byte, dict []string) ([]byte, error)) *ort.Session {
	t.Helper()
	_, _, dict := realModels(t)
	m.once.Do(func() {
		src, err := os.ReadFile(filepath.Join(fleettest.CacheDir(), "ocr", source))
		if err != nil {
			m.err = err
			return
		}
		b, err := make(src, dict)
		if err != nil {
			m.err = err
			return
		}
		dir, err := os.MkdirTemp("", "ocr-latin-")
		if err != nil {
			m.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "rec.onnx")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			m.err = err
			return
		}
		m.rec, m.err = ort.Open(path, ort.Options{IntraOpThreads: testThreads})
	})
	if m.err != nil {
		t.Fatalf("derived recognizer: %v", m.err)
	}
	return m.rec
}

// prunedRec is the real recognizer with its head pruned to LatinHead.
func prunedRec(t testing.TB) *ort.Session {
	return prunedModel.open(t, recSource, func(src []byte, dict []string) ([]byte, error) { return PruneHead(src, LatinHead(dict)) })
}

// latinRec is the recognizer the zoo ships (LatinRecognizer).
func latinRec(t testing.TB) *ort.Session {
	return latinModel.open(t, recSource, LatinRecognizer)
}

// fastDet is the detector the zoo ships (FastDetector).
func fastDet(t testing.TB) *ort.Session {
	return fastDetModel.open(t, "ch_PP-OCRv4_det_infer.onnx", func(src []byte, _ []string) ([]byte, error) { return FastDetector(src) })
}

const recSource = "ch_PP-OCRv4_rec_infer.onnx"

func TestLatinHead(t *testing.T) {
	dict := []string{"a", "中", "（", "é", "Z", "ab"}
	got := LatinHead(dict)
	want := []int{0, 1, 4, 5, 7} // blank, a, é, Z, space
	if len(got) != len(want) {
		t.Fatalf("LatinHead = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("LatinHead = %v, want %v", got, want)
		}
	}
	sub, allow := prunedDict(dict, CharsetClasses(dict, []string{"Z"}), got)
	if len(sub) != 3 || sub[0] != "a" || sub[1] != "é" || sub[2] != "Z" {
		t.Errorf("pruned dict %q", sub)
	}
	if want := []bool{true, false, false, true, true}; len(allow) != len(want) || allow[1] || allow[2] || !allow[3] || !allow[0] || !allow[4] {
		t.Errorf("pruned allow %v, want %v", allow, want)
	}
}

// TestPrunedHeadReadsAsFull runs the real recognizer and its Latin-pruned
// twin on the same line crops of rendered and spoilt pages: at every CTC
// step the pruned head's best class is the full head's best class among
// LatinHead's, its probabilities are the full ones renormalized over the
// kept classes, and the decoded lines are the same.
func TestPrunedHeadReadsAsFull(t *testing.T) {
	det, rec, dict := realModels(t)
	pruned := prunedRec(t)
	keep := LatinHead(dict)
	latin := LatinClasses(dict)
	rule := DefaultSpaceRule()
	steps, lines := 0, 0
	for _, scan := range []pages.Scan{pages.Plain, pages.Chain(pages.Blur, pages.JPEG(40))} {
		for i, ttf := range [][]byte{goregular.TTF, gomono.TTF} {
			img, err := scan(renderPage(t, ttf, []float64{14, 20}[i], pages.NoisyLines[i]))
			if err != nil {
				t.Fatal(err)
			}
			full := readImageProbs(t, det, rec, img)
			part := readImageProbs(t, det, pruned, img)
			if len(full) != len(part) || len(full) == 0 {
				t.Fatalf("%d lines through the full head, %d through the pruned one", len(full), len(part))
			}
			for l := range full {
				f, p := full[l], part[l]
				if f.C != len(dict)+2 || p.C != len(keep) || f.T != p.T {
					t.Fatalf("line %d: full %dx%d, pruned %dx%d, want C %d and %d", l, f.T, f.C, p.T, p.C, len(dict)+2, len(keep))
				}
				for s := 0; s < f.T; s++ {
					fs, ps := f.probs[s*f.C:(s+1)*f.C], p.probs[s*p.C:(s+1)*p.C]
					var sum float32
					best := 0
					for _, c := range keep {
						sum += fs[c]
						if fs[c] > fs[best] {
							best = c
						}
					}
					pbest := 0
					for k, v := range ps {
						if v > ps[pbest] {
							pbest = k
						}
						if d := v - fs[keep[k]]/sum; d > 1e-3 || d < -1e-3 {
							t.Fatalf("line %d step %d class %d: pruned %.5f, full renormalized %.5f", l, s, keep[k], v, fs[keep[k]]/sum)
						}
					}
					if keep[pbest] != best {
						t.Errorf("line %d step %d: pruned head's best is class %d, full head's best Latin class %d", l, s, keep[pbest], best)
					}
					steps++
				}
				a, _ := DecodeCTC(f.probs, f.T, f.C, dict, latin, rule)
				b, _ := headDecoder(dict, latin, rule)(p.probs, p.T, p.C, lineInk{})
				if a != b {
					t.Errorf("line %d: full head reads %q, pruned %q", l, a, b)
				}
				lines++
			}
		}
	}
	t.Logf("%d lines, %d steps agree", lines, steps)
}

// TestLatinRecognizerReadsAsPruned runs the recognizer the zoo ships
// (head pruned, affines and hardswish folded into the convs) against the
// one with only its head pruned, on the same crops: the folds change only
// float rounding, so every probability agrees to within 1e-3, and the
// lines decode the same.
func TestLatinRecognizerReadsAsPruned(t *testing.T) {
	det, _, dict := realModels(t)
	pruned, latin := prunedRec(t), latinRec(t)
	read := headDecoder(dict, LatinClasses(dict), DefaultSpaceRule())
	var worst float32
	steps, flips := 0, 0
	for _, scan := range []pages.Scan{pages.Plain, pages.Chain(pages.LowContrast, pages.JPEG(35))} {
		for i, ttf := range [][]byte{goregular.TTF, gomono.TTF} {
			img, err := scan(renderPage(t, ttf, []float64{14, 24}[i], pages.NoisyLines[i]))
			if err != nil {
				t.Fatal(err)
			}
			a := readImageProbs(t, det, pruned, img)
			b := readImageProbs(t, det, latin, img)
			if len(a) != len(b) || len(a) == 0 {
				t.Fatalf("%d lines through the pruned model, %d through the folded one", len(a), len(b))
			}
			for l := range a {
				if a[l].T != b[l].T || a[l].C != b[l].C {
					t.Fatalf("line %d: %dx%d against %dx%d", l, a[l].T, a[l].C, b[l].T, b[l].C)
				}
				for s := 0; s < a[l].T; s++ {
					pa, pb := a[l].probs[s*a[l].C:(s+1)*a[l].C], b[l].probs[s*b[l].C:(s+1)*b[l].C]
					ba, bb := 0, 0
					for k := range pa {
						worst = max(worst, pa[k]-pb[k], pb[k]-pa[k])
						if pa[k] > pa[ba] {
							ba = k
						}
						if pb[k] > pb[bb] {
							bb = k
						}
					}
					steps++
					if ba != bb {
						flips++
					}
				}
				ta, _ := read(a[l].probs, a[l].T, a[l].C, a[l].ink)
				tb, _ := read(b[l].probs, b[l].T, b[l].C, b[l].ink)
				if ta != tb {
					t.Errorf("line %d: pruned reads %q, folded %q", l, ta, tb)
				}
			}
		}
	}
	t.Logf("%d steps, largest probability difference %.2g, %d best classes differ", steps, worst, flips)
	if worst > 1e-3 {
		t.Errorf("probabilities differ by up to %.2g, want at most 1e-3", worst)
	}
}

// TestFastDetectorFindsSameBoxes runs the real detector and the one the
// zoo ships (affines folded into the convs) on the same pages: the
// probability maps agree to within 1e-3 and the boxes are the same.
func TestFastDetectorFindsSameBoxes(t *testing.T) {
	det, _, _ := realModels(t)
	fast := fastDet(t)
	var worst float32
	boxes := 0
	for _, scan := range []pages.Scan{pages.Plain, pages.Chain(pages.Rotate(1.5), pages.JPEG(40))} {
		for i, ttf := range [][]byte{goregular.TTF, gomono.TTF} {
			img, err := scan(renderPage(t, ttf, []float64{14, 28}[i], pages.NoisyLines[i]))
			if err != nil {
				t.Fatal(err)
			}
			in, h, w := DetInput(img, DefaultParams().MaxSide)
			var maps [2][]float32
			for k, s := range []*ort.Session{det, fast} {
				outs, err := s.Run(detTensor(in, h, w))
				if err != nil {
					t.Fatal(err)
				}
				maps[k] = outs[0].Float32[:h*w]
			}
			for j := range maps[0] {
				worst = max(worst, maps[0][j]-maps[1][j], maps[1][j]-maps[0][j])
			}
			a := Boxes(maps[0], h, w, img.Bounds().Dx(), img.Bounds().Dy(), DefaultParams())
			b := Boxes(maps[1], h, w, img.Bounds().Dx(), img.Bounds().Dy(), DefaultParams())
			if len(a) != len(b) {
				t.Fatalf("%d boxes from the real detector, %d from the folded one", len(a), len(b))
			}
			for j := range a {
				if a[j] != b[j] {
					t.Errorf("box %d: %v against %v", j, a[j], b[j])
				}
			}
			boxes += len(a)
		}
	}
	t.Logf("%d boxes, largest probability difference %.2g", boxes, worst)
	if worst > 1e-3 {
		t.Errorf("probability maps differ by up to %.2g, want at most 1e-3", worst)
	}
}

// TestLatinHeadRefusesOtherScripts: the Latin recognizer reads a charset
// of Latin characters, and refuses, with ErrLatinHead, one that names a
// character its head no longer scores (or no mask at all, every class).
func TestLatinHeadRefusesOtherScripts(t *testing.T) {
	_, _, dict := realModels(t)
	rec := latinRec(t)
	img := renderPage(t, goregular.TTF, 28, []string{"Invoice 2041"})
	quads := []Quad{{{0, 0}, {img.Bounds().Dx(), 0}, {img.Bounds().Dx(), img.Bounds().Dy()}, {0, img.Bounds().Dy()}}}
	p := DefaultParams()
	p.Allow = CharsetClasses(dict, strings.Split("0123456789", ""))
	res, err := RecognizeQuads(img, quads, rec, dict, p)
	if err != nil || !strings.Contains(res.Text, "2041") {
		t.Fatalf("digits through the Latin head: %q, %v", res.Text, err)
	}
	for _, allow := range [][]bool{CharsetClasses(dict, []string{"2", "中"}), nil} {
		p.Allow = allow
		if _, err := RecognizeQuads(img, quads, rec, dict, p); !errors.Is(err, ErrLatinHead) {
			t.Errorf("a charset beyond the Latin head: %v, want ErrLatinHead", err)
		}
	}
}
