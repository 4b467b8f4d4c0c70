package ocr

import (
	"math"
	"strings"
	"testing"
)

func TestLoadDict(t *testing.T) {
	dict, err := LoadDict(strings.NewReader("a\r\nb\n \n中\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", " ", "中"}
	if strings.Join(dict, "|") != strings.Join(want, "|") {
		t.Fatalf("dict %q, want %q", dict, want)
	}
	if _, err := LoadDict(strings.NewReader("")); err == nil {
		t.Fatal("an empty dictionary must be an error")
	}
}

// ctcProbs builds a T x C probability tensor whose step t puts p[t] on
// class cls[t] and spreads the rest evenly.
func ctcProbs(C int, cls []int, p []float32) []float32 {
	out := make([]float32, len(cls)*C)
	for t, c := range cls {
		rest := (1 - p[t]) / float32(C-1)
		for k := 0; k < C; k++ {
			out[t*C+k] = rest
		}
		out[t*C+c] = p[t]
	}
	return out
}

func TestDecodeCTC(t *testing.T) {
	dict := []string{"a", "b", "c"}
	const C = 5 // blank, a, b, c, space
	const blank, a, b, c, space = 0, 1, 2, 3, 4
	cls := []int{a, a, blank, a, b, space, space, c, blank, blank}
	p := []float32{0.9, 0.8, 0.99, 0.7, 0.6, 0.5, 0.95, 0.4, 0.9, 0.9}
	text, score := DecodeCTC(ctcProbs(C, cls, p), len(cls), C, dict)
	if text != "aab c" {
		t.Fatalf("text %q, want %q (repeats merged, a blank splits them, class 4 is a space)", text, "aab c")
	}
	// Kept: a(0.9), a(0.7), b(0.6), space(0.5), c(0.4); merged repeats and
	// blanks do not count.
	if want := float32((0.9 + 0.7 + 0.6 + 0.5 + 0.4) / 5); math.Abs(float64(score-want)) > 1e-6 {
		t.Fatalf("score %v, want %v", score, want)
	}

	if text, score := DecodeCTC(ctcProbs(C, []int{blank, blank}, []float32{1, 1}), 2, C, dict); text != "" || score != 0 {
		t.Fatalf("all blanks: %q %v", text, score)
	}
	// A class past the space (a model larger than its dictionary) is dropped.
	if text, _ := DecodeCTC(ctcProbs(6, []int{1, 5, 2}, []float32{0.9, 0.9, 0.9}), 3, 6, dict); text != "ab" {
		t.Fatalf("unknown class: %q", text)
	}
	// Fewer values than T x C: decode the whole steps there are, no panic.
	if text, _ := DecodeCTC(ctcProbs(C, []int{a, b}, []float32{0.9, 0.9})[:C+2], 2, C, dict); text != "a" {
		t.Fatalf("short tensor: %q", text)
	}
	if text, _ := DecodeCTC(nil, 3, 0, dict); text != "" {
		t.Fatalf("no classes: %q", text)
	}
}
