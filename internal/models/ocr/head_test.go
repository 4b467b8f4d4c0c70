package ocr

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/ort"
	"github.com/inferq/inferq/internal/pages"
)

// latinModel is the real recognizer with its head pruned to LatinHead,
// made once from the source model.
var latinModel struct {
	once sync.Once
	rec  *ort.Session
	err  error
}

func latinRec(t testing.TB) *ort.Session {
	t.Helper()
	_, _, dict := realModels(t)
	latinModel.once.Do(func() {
		src, err := os.ReadFile(filepath.Join(fleettest.CacheDir(), "ocr", "ch_PP-OCRv4_rec_infer.onnx"))
		if err != nil {
			latinModel.err = err
			return
		}
		b, err := PruneHead(src, LatinHead(dict))
		if err != nil {
			latinModel.err = err
			return
		}
		dir, err := os.MkdirTemp("", "ocr-latin-")
		if err != nil {
			latinModel.err = err
			return
		}
		path := filepath.Join(dir, "rec.onnx")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			latinModel.err = err
			return
		}
		latinModel.rec, latinModel.err = ort.Open(path, ort.Options{IntraOpThreads: testThreads})
		os.RemoveAll(dir)
	})
	if latinModel.err != nil {
		t.Fatalf("pruned recognizer: %v", latinModel.err)
	}
	return latinModel.rec
}

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
	pruned := latinRec(t)
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
				b, _ := headDecoder(dict, latin, rule)(p.probs, p.T, p.C)
				if a != b {
					t.Errorf("line %d: full head reads %q, pruned %q", l, a, b)
				}
				lines++
			}
		}
	}
	t.Logf("%d lines, %d steps agree", lines, steps)
}
