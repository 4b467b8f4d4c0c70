package ocr

import (
	"math"
	"slices"
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
	text, score := DecodeCTC(ctcProbs(C, cls, p), len(cls), C, dict, DefaultSpaceGap)
	if text != "aab c" {
		t.Fatalf("text %q, want %q (repeats merged, a blank splits them, class 4 is a space)", text, "aab c")
	}
	// Kept: a(0.9), a(0.7), b(0.6), space(0.5), c(0.4); merged repeats and
	// blanks do not count.
	if want := float32((0.9 + 0.7 + 0.6 + 0.5 + 0.4) / 5); math.Abs(float64(score-want)) > 1e-6 {
		t.Fatalf("score %v, want %v", score, want)
	}

	if text, score := DecodeCTC(ctcProbs(C, []int{blank, blank}, []float32{1, 1}), 2, C, dict, DefaultSpaceGap); text != "" || score != 0 {
		t.Fatalf("all blanks: %q %v", text, score)
	}
	// A class past the space (a model larger than its dictionary) is dropped.
	if text, _ := DecodeCTC(ctcProbs(6, []int{1, 5, 2}, []float32{0.9, 0.9, 0.9}), 3, 6, dict, DefaultSpaceGap); text != "ab" {
		t.Fatalf("unknown class: %q", text)
	}
	// Fewer values than T x C: decode the whole steps there are, no panic.
	if text, _ := DecodeCTC(ctcProbs(C, []int{a, b}, []float32{0.9, 0.9})[:C+2], 2, C, dict, DefaultSpaceGap); text != "a" {
		t.Fatalf("short tensor: %q", text)
	}
	if text, _ := DecodeCTC(nil, 3, 0, dict, DefaultSpaceGap); text != "" {
		t.Fatalf("no classes: %q", text)
	}
}

// spaceDict is a small recognizer alphabet for the spacing tests: Latin
// letters, digits, some punctuation and two Han characters; its space
// class is len(spaceDict)+1.
var spaceDict = strings.Split("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:#中文", "")

// framesOf turns a picture of a line's frames into CTC probabilities over
// spaceDict: one step per rune, '_' the blank, '~' the model's own space
// class, any other rune its dictionary class with probability 0.9.
func framesOf(t *testing.T, pic string) (probs []float32, T, C int) {
	t.Helper()
	C = len(spaceDict) + 2
	var cls []int
	for _, r := range pic {
		switch r {
		case '_':
			cls = append(cls, 0)
		case '~':
			cls = append(cls, len(spaceDict)+1)
		default:
			k := slices.Index(spaceDict, string(r))
			if k < 0 {
				t.Fatalf("%q is not in the test dictionary", r)
			}
			cls = append(cls, k+1)
		}
	}
	p := make([]float32, len(cls))
	for i := range p {
		p[i] = 0.9
	}
	return ctcProbs(C, cls, p), len(cls), C
}

func TestCTCGreedySpans(t *testing.T) {
	probs, T, C := framesOf(t, "_aa_b__bbc_")
	got := greedyCTC(probs, T, C)
	a, b, c := 1, 2, 3
	want := []ctcChar{{class: a, first: 1, last: 2}, {class: b, first: 4, last: 4}, {class: b, first: 7, last: 8}, {class: c, first: 9, last: 9}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].class != want[i].class || got[i].first != want[i].first || got[i].last != want[i].last || got[i].prob != 0.9 {
			t.Fatalf("char %d: got %+v, want %+v (prob 0.9)", i, got[i], want[i])
		}
	}
	if got := greedyCTC(nil, 4, 0); got != nil {
		t.Fatalf("no classes: %+v", got)
	}
}

func TestSpaceRecovery(t *testing.T) {
	cases := []struct {
		name, frames, want string
	}{
		// Pitch 2 steps inside words, 5 to 6 across them: the demo's line.
		{"spaces recovered", "I_n_v_o_i_c_e____2_0_4_1_____t_o_t_a_l_____3_1_8_._5_0____E_U_R", "Invoice 2041 total 318.50 EUR"},
		// Uneven steps inside a word (2 to 3, the quantization of 8-pixel
		// frames) and wide letters read over two steps: no space.
		{"no spurious space", "w__i_d__g_e__t__s_MM__WW__a_n__y", "widgetsMWany"},
		{"one word", "S_p_r_i_n_g_f_i_e_l_d", "Springfield"},
		// The model's own spaces stay as they are, one each, and the gaps
		// it missed are still filled.
		{"model spaces kept", "a_b_c__~__d_e_f_____g_h_i", "abc def ghi"},
		{"model spaces only", "a_b_c_~_d_e_f_~_g_h_i", "abc def ghi"},
		// Too few characters to know the pitch: left alone.
		{"too short", "a______b", "ab"},
		{"two steps", "a__b______c", "abc"},
		// Scripts without word spaces get none, whatever the gap.
		{"han", "中___文_________中___文", "中文中文"},
		{"han beside latin", "a_b_c_d_______中", "abcd中"},
		{"leading and trailing blanks", "______a_b_c_d_____e_f_g______", "abcd efg"},
	}
	for _, tc := range cases {
		probs, T, C := framesOf(t, tc.frames)
		got, _ := DecodeCTC(probs, T, C, spaceDict, DefaultSpaceGap)
		if got != tc.want {
			t.Errorf("%s: %q decodes to %q, want %q", tc.name, tc.frames, got, tc.want)
		}
	}
}

func TestSpaceRecoveryOff(t *testing.T) {
	probs, T, C := framesOf(t, "a_b_c______d_e_f__~__g")
	for _, gap := range []float64{0, -1} {
		if got, _ := DecodeCTC(probs, T, C, spaceDict, gap); got != "abcdef g" {
			t.Errorf("gap %v: %q, want the model's own spaces only: %q", gap, got, "abcdef g")
		}
	}
}

func TestSpaceRecoveryScore(t *testing.T) {
	// An inserted space has no probability of its own: the score is the
	// mean over what the model read.
	probs, T, C := framesOf(t, "a_b_c_______d_e_f")
	text, score := DecodeCTC(probs, T, C, spaceDict, DefaultSpaceGap)
	if text != "abc def" || math.Abs(float64(score-0.9)) > 1e-6 {
		t.Fatalf("%q score %v, want %q 0.9", text, score, "abc def")
	}
}

func TestSpaceRecoveryThreshold(t *testing.T) {
	// Pitch 4 steps: a centre distance of 6 (1.5 pitches) stays inside the
	// word, 7 (1.75) splits it.
	for _, tc := range []struct{ frames, want string }{
		{"a___b___c___d_____e___f", "abcdef"},
		{"a___b___c___d______e___f", "abcd ef"},
	} {
		probs, T, C := framesOf(t, tc.frames)
		if got, _ := DecodeCTC(probs, T, C, spaceDict, DefaultSpaceGap); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.frames, got, tc.want)
		}
	}
}
