package ocr

import (
	"slices"
	"testing"
)

func TestLatinClasses(t *testing.T) {
	dict := []string{"a", "Z", "7", "(", "）", "中", "é", "€", "，", "ab", "０"}
	got := LatinClasses(dict)
	// blank, dict..., space
	want := []bool{true, true, true, true, true, false, false, true, true, false, false, false, true}
	if !slices.Equal(got, want) {
		t.Fatalf("LatinClasses(%q) = %v, want %v", dict, got, want)
	}
	if got := CharsetClasses(dict, []string{"a", "中"}); !slices.Equal(got, []bool{true, true, false, false, false, false, true, false, false, false, false, false, true}) {
		t.Fatalf("CharsetClasses = %v", got)
	}
}

// TestDecodeLatin: a step the model gives to a masked class goes to the
// likeliest allowed one, the ASCII twin of a full-width bracket here.
func TestDecodeLatin(t *testing.T) {
	C := len(spaceDict) + 2
	idx := func(s string) int { return slices.Index(spaceDict, s) + 1 }
	step := func(best string, pb float32, second string, ps float32) []float32 {
		s := make([]float32, C)
		s[idx(best)], s[idx(second)] = pb, ps
		return s
	}
	probs := slices.Concat(
		step("a", 0.9, "b", 0.05),
		make([]float32, C), // blank
		step("）", 0.6, ")", 0.3),
		make([]float32, C),
		step("中", 0.5, "c", 0.4),
	)
	for i := 1; i < 5; i += 2 {
		probs[i*C] = 1
	}
	all, _ := DecodeCTC(probs, 5, C, spaceDict, nil, SpaceRule{})
	latin, _ := DecodeCTC(probs, 5, C, spaceDict, LatinClasses(spaceDict), SpaceRule{})
	if all != "a）中" || latin != "a)c" {
		t.Fatalf("all classes %q (want %q), Latin %q (want %q)", all, "a）中", latin, "a)c")
	}
}

func TestPunctSpaces(t *testing.T) {
	for _, tc := range []struct{ frames, want string }{
		// A colon or comma between letters takes a space though the model
		// gave none; a time keeps its colon tight.
		{"I_D_:_Z_X", "ID: ZX"},
		{"a_b_c_,_d_e_f", "abc, def"},
		{"9_:_3_0", "9:30"},
		// An inserted space after a decimal point between digits goes.
		{"3_1_8_._-_5_0", "318.50"},
		// One the model emitted stays.
		{"3_1_8_._~_5_0", "318. 50"},
		// After a letter before a digit, after a digit before a letter:
		// a space, but not after a digit's colon (a time or a ratio).
		{"l_:_3_8", "l: 38"},
		{"9_,_a_b", "9, ab"},
		{"1_:_a", "1:a"},
		{"1_,_2_0_4", "1,204"},
		// A slash is spaced on both sides or on neither.
		{"7_-_/_S_O", "7 / SO"},
		{"7_/_-_S_O", "7 / SO"},
		{"a_b_/_c_d", "ab/cd"},
		{"a_-_/_-_c", "a / c"},
		{"1_2_/_-_0_5", "12/05"},
		{"1_2_-_/_0_5", "12/05"},
		{"1_2_/_~_0_5", "12/ 05"},
	} {
		probs, T, C := framesOf(t, tc.frames)
		if got, _ := DecodeCTC(probs, T, C, spaceDict, nil, SpaceRule{}); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.frames, got, tc.want)
		}
	}
}

func TestFixCase(t *testing.T) {
	for in, want := range map[string]string{
		"ToTAL 318.50 EUR":        "TOTAL 318.50 EUR",
		"lNVOICE":                 "INVOICE",
		"WindOw cOver":            "Window cover",
		"heIlo":                   "hello",
		"S0S and SoS":             "SOS and SOS",
		"0rder #7719, 0scar":      "Order #7719, Oscar",
		"volume O.75 and 1O0 kg":  "volume 0.75 and 100 kg",
		"PDFs and URLs":           "PDFs and URLs",
		"McDonald iPhone Invoice": "McDonald iPhone Invoice",
		"ZX-0457 2024-03-15 100":  "ZX-0457 2024-03-15 100",
		"Xylophone xylophone OK":  "Xylophone xylophone OK",
		"No. 5 o'clock":           "No. 5 o'clock",
		"中文 WOw":                  "中文 WOW",
	} {
		if got := FixCase(in); got != want {
			t.Errorf("FixCase(%q) = %q, want %q", in, got, want)
		}
	}
}
