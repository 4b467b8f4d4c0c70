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
	// Plain greedy decoding: these steps spread what their class leaves
	// evenly, which puts more than DefaultSpaceRule's MinProb on the space
	// class everywhere.
	plain := SpaceRule{MinProb: -1, Gap: -1}
	dict := []string{"a", "b", "c"}
	const C = 5 // blank, a, b, c, space
	const blank, a, b, c, space = 0, 1, 2, 3, 4
	cls := []int{a, a, blank, a, b, space, space, c, blank, blank}
	p := []float32{0.9, 0.8, 0.99, 0.7, 0.6, 0.5, 0.95, 0.4, 0.9, 0.9}
	text, score := DecodeCTC(ctcProbs(C, cls, p), len(cls), C, dict, nil, plain)
	if text != "aab c" {
		t.Fatalf("text %q, want %q (repeats merged, a blank splits them, class 4 is a space)", text, "aab c")
	}
	// Kept: a(0.9), a(0.7), b(0.6), space(0.5), c(0.4); merged repeats and
	// blanks do not count.
	if want := float32((0.9 + 0.7 + 0.6 + 0.5 + 0.4) / 5); math.Abs(float64(score-want)) > 1e-6 {
		t.Fatalf("score %v, want %v", score, want)
	}

	if text, score := DecodeCTC(ctcProbs(C, []int{blank, blank}, []float32{1, 1}), 2, C, dict, nil, plain); text != "" || score != 0 {
		t.Fatalf("all blanks: %q %v", text, score)
	}
	// A class past the space (a model larger than its dictionary) is dropped.
	if text, _ := DecodeCTC(ctcProbs(6, []int{1, 5, 2}, []float32{0.9, 0.9, 0.9}), 3, 6, dict, nil, plain); text != "ab" {
		t.Fatalf("unknown class: %q", text)
	}
	// Fewer values than T x C: decode the whole steps there are, no panic.
	if text, _ := DecodeCTC(ctcProbs(C, []int{a, b}, []float32{0.9, 0.9})[:C+2], 2, C, dict, nil, plain); text != "a" {
		t.Fatalf("short tensor: %q", text)
	}
	if text, _ := DecodeCTC(nil, 3, 0, dict, nil, plain); text != "" {
		t.Fatalf("no classes: %q", text)
	}
}

// spaceDict is a small recognizer alphabet for the spacing tests: Latin
// letters, digits, some punctuation and two Han characters; its space
// class is len(spaceDict)+1.
var spaceDict = strings.Split("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:#()@/中文）", "")

// framesOf turns a picture of a line's frames into CTC probabilities over
// spaceDict: one step per rune, '_' the blank, '-' a blank step where the
// space class has 0.3, '+' one where it has 0.004 (under
// DefaultSpaceRule's 0.005), '~' the model's own space class, any other
// rune its dictionary class with probability 0.9.
func framesOf(t *testing.T, pic string) (probs []float32, T, C int) {
	t.Helper()
	C = len(spaceDict) + 2
	space := len(spaceDict) + 1
	var cls []int
	var spaceP []float32
	for _, r := range pic {
		sp := float32(0)
		switch r {
		case '_':
			cls = append(cls, 0)
		case '-':
			cls, sp = append(cls, 0), 0.3
		case '+':
			cls, sp = append(cls, 0), 0.004
		case '~':
			cls = append(cls, space)
		default:
			k := slices.Index(spaceDict, string(r))
			if k < 0 {
				t.Fatalf("%q is not in the test dictionary", r)
			}
			cls = append(cls, k+1)
		}
		spaceP = append(spaceP, sp)
	}
	p := make([]float32, len(cls))
	for i := range p {
		p[i] = 0.9
		if spaceP[i] > 0 {
			p[i] = 0.6
		}
	}
	probs = ctcProbs(C, cls, p)
	for i, sp := range spaceP {
		step := probs[i*C : (i+1)*C]
		if sp > 0 {
			for k := range step {
				step[k] = 0
			}
			step[0], step[space] = 1-sp, sp
		} else if cls[i] != space {
			// Nothing on the space class unless the picture says so.
			step[space] = 0
		}
	}
	return probs, len(cls), C
}

func TestCTCGreedySpans(t *testing.T) {
	probs, T, C := framesOf(t, "_aa_b__bbc_")
	got := greedyCTC(probs, T, C, nil)
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
	if got := greedyCTC(nil, 4, 0, nil); got != nil {
		t.Fatalf("no classes: %+v", got)
	}
}

func TestSpaceRecovery(t *testing.T) {
	cases := []struct {
		name, frames, want string
	}{
		// The demo's line as small type reads it: the blank wins every
		// step between the words, but the space class is there.
		{"spaces from the space class", "I_n_v_o_i_c_e-2_0_4_1_-t_o_t_a_l-_3_1_8_._5_0_-E_U_R", "Invoice 2041 total 318.50 EUR"},
		// On the characters' own steps too: "d" and "e" touch.
		{"space class beside a character", "a_b_c_d-e_f_g", "abcd efg"},
		// A trace of the space class inside words is no gap.
		{"no spurious space", "w+i_d+g+e_t_s+M_W+a_n+y", "widgetsMWany"},
		{"one word", "S_p_r_i_n_g_f_i_e_l_d", "Springfield"},
		// Uneven steps inside a word, up to twice the pitch (what 8-pixel
		// steps give for wide letters): no space without the space class.
		{"uneven pitch", "a_b_c_d___e_f__g_h", "abcdefgh"},
		// A gap wider than 2.5 pitches is a word gap even when the model
		// gives the space class nothing there.
		{"wide gap", "a_b_c_d_______e_f_g", "abcd efg"},
		// The model's own spaces stay as they are, one each, and the gaps
		// it missed are still filled.
		{"model spaces kept", "a_b_c-~-d_e_f-g_h_i", "abc def ghi"},
		{"model spaces only", "a_b_c_~_d_e_f_~_g_h_i", "abc def ghi"},
		// Too few characters to know the pitch: only the space class counts.
		{"too short", "a______b", "ab"},
		{"short, space class", "a_-_b", "a b"},
		// Scripts without word spaces get none, whatever the evidence.
		{"han", "中_-_文_________中___文___中___文", "中文中文中文"},
		{"han beside latin", "a_b_c_d-中", "abcd中"},
		{"full-width bracket", "b_l_u_e_-）-@", "blue）@"},
		// Nor before closing punctuation or after an opening bracket,
		// though after either, yes.
		{"punctuation", "b_e_n_d-,-f_o_l_d_-(-b_l_u_e-)-a_t-.", "bend, fold (blue) at."},
		{"leading and trailing blanks", "-_____a_b_c_d-e_f_g____-_", "abcd efg"},
	}
	for _, tc := range cases {
		probs, T, C := framesOf(t, tc.frames)
		got, _ := DecodeCTC(probs, T, C, spaceDict, nil, SpaceRule{})
		if got != tc.want {
			t.Errorf("%s: %q decodes to %q, want %q", tc.name, tc.frames, got, tc.want)
		}
	}
}

func TestSpaceRecoveryOff(t *testing.T) {
	probs, T, C := framesOf(t, "a_b_c-d_e_f__~__g_h_i________j")
	for _, tc := range []struct {
		rule SpaceRule
		want string
	}{
		{SpaceRule{}, "abc def ghi j"},
		{SpaceRule{MinProb: -1, Gap: -1}, "abcdef ghij"},
		{SpaceRule{MinProb: -1}, "abcdef ghi j"},
		{SpaceRule{Gap: -1}, "abc def ghij"},
	} {
		if got, _ := DecodeCTC(probs, T, C, spaceDict, nil, tc.rule); got != tc.want {
			t.Errorf("rule %+v: %q, want %q", tc.rule, got, tc.want)
		}
	}
}

func TestSpaceRecoveryScore(t *testing.T) {
	// An inserted space has no probability of its own: the score is the
	// mean over what the model read.
	probs, T, C := framesOf(t, "a_b_c-d_e_f")
	text, score := DecodeCTC(probs, T, C, spaceDict, nil, SpaceRule{})
	if text != "abc def" || math.Abs(float64(score-0.9)) > 1e-6 {
		t.Fatalf("%q score %v, want %q 0.9", text, score, "abc def")
	}
}

func TestSpaceRecoveryThreshold(t *testing.T) {
	space := len(spaceDict) + 1
	for _, tc := range []struct {
		frames string
		at     int // the step given the space class
		p      float32
		want   string
	}{
		// c and d four steps apart: MinProb is enough.
		{"a_b_c___d_e_f", 6, 0.0049, "abcdef"},
		{"a_b_c___d_e_f", 6, 0.0051, "abc def"},
		// Two steps apart (NearSteps 3): the space class must top
		// StrongProb.
		{"a_b_c_d_e_f", 5, 0.0051, "abcdef"},
		{"a_b_c_d_e_f", 5, 0.019, "abcdef"},
		{"a_b_c_d_e_f", 5, 0.021, "abc def"},
	} {
		probs, T, C := framesOf(t, tc.frames)
		probs[tc.at*C+space] = tc.p
		if got, _ := DecodeCTC(probs, T, C, spaceDict, nil, SpaceRule{}); got != tc.want {
			t.Errorf("%q, space class %v at step %d: %q, want %q", tc.frames, tc.p, tc.at, got, tc.want)
		}
	}
	// Near characters with the strong threshold off read as far ones.
	probs, T, C := framesOf(t, "a_b_c_d_e_f")
	probs[5*C+space] = 0.0051
	if got, _ := DecodeCTC(probs, T, C, spaceDict, nil, SpaceRule{StrongProb: -1}); got != "abc def" {
		t.Errorf("StrongProb off: %q, want %q", got, "abc def")
	}
	// Pitch 4 steps: a centre distance of 10 (2.5 pitches) stays inside
	// the word, 11 splits it.
	for _, tc := range []struct{ frames, want string }{
		{"a___b___c___d_________e___f", "abcdef"},
		{"a___b___c___d__________e___f", "abcd ef"},
	} {
		probs, T, C := framesOf(t, tc.frames)
		if got, _ := DecodeCTC(probs, T, C, spaceDict, nil, SpaceRule{}); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.frames, got, tc.want)
		}
	}
}
