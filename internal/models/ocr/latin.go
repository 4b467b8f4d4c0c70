package ocr

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// LatinClasses marks the classes of a recognizer over dict that Latin text
// uses, for DecodeCTC's allow: the blank, the space class, and the dict
// characters that are one rune of printable ASCII, Latin-1 (é, £, °),
// Latin Extended-A (ł, œ) or the euro sign. Everything else is masked: Han
// and kana, which the multilingual PP-OCRv4 recognizer sometimes reads for
// a blurred Latin glyph, and the full-width forms (（ ， ： ０) it reads
// for punctuation and digits beside Chinese-looking shapes; with those
// masked the step goes to the next likeliest class, the ASCII twin.
func LatinClasses(dict []string) []bool {
	allow := make([]bool, len(dict)+2)
	allow[0] = true
	allow[len(dict)+1] = true
	for i, ch := range dict {
		r, n := utf8.DecodeRuneInString(ch)
		if n != len(ch) || n == 0 {
			continue
		}
		allow[i+1] = (r >= 0x20 && r <= 0x7e) || (r >= 0xa1 && r <= 0x17f) || r == '€'
	}
	return allow
}

// CharsetClasses marks the classes of dict whose characters are in chars
// (plus the blank and the space class), for DecodeCTC's allow.
func CharsetClasses(dict, chars []string) []bool {
	in := make(map[string]bool, len(chars))
	for _, c := range chars {
		in[c] = true
	}
	allow := make([]bool, len(dict)+2)
	allow[0] = true
	allow[len(dict)+1] = true
	for i, ch := range dict {
		allow[i+1] = in[ch]
	}
	return allow
}

// caseTwins are the letters whose capital is the small letter drawn
// larger (c o s u v w x z): a recognizer that sees a line scaled to 48 px
// has only the glyph's height against its neighbours to tell them apart,
// and often gets it wrong. 'l' and 'I' are in the same trouble in most
// sans-serif faces.
const caseTwins = "cosuvwxzCOSUVWXZ"

// FixCase repairs, word by word, the letter case and letter-digit
// confusions that the recognizer makes on shapes that differ only in
// size. A word here is a run of letters and '0's with at least two
// letters, each '0' beside a letter. Inside a word whose other letters
// are all capitals, a case twin (see caseTwins) or 'l' is made a capital
// ("ToTAL" -> "TOTAL", "lNVOICE" -> "INVOICE"); inside one whose other
// letters are all small, a twin or 'I' after the first letter is made
// small ("WindOw" -> "Window", "heIlo" -> "hello"), the first letter
// being a capital in its own right at a sentence's or a name's start;
// a word of twins alone takes the case most of them have ("SoS" ->
// "SOS"). A '0' in a word is an 'o' or 'O' by the same rule ("0rder" ->
// "Order", "S0S" -> "SOS"). A small 's' ending a word of capitals stays
// small (a plural: "PDFs"). The other way round, an 'O' or 'o' with no
// letter beside it and a digit next to it (or a decimal point and then a
// digit) is a zero ("O.75" -> "0.75").
func FixCase(s string) string {
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if !wordRune(rs[i]) {
			i++
			continue
		}
		j := i
		for j < len(rs) && wordRune(rs[j]) {
			j++
		}
		fixWord(rs[i:j])
		i = j
	}
	at := func(i int) rune {
		if i < 0 || i >= len(rs) {
			return ' '
		}
		return rs[i]
	}
	digit := func(r rune) bool { return r >= '0' && r <= '9' }
	for i, r := range rs {
		if r != 'O' && r != 'o' || unicode.IsLetter(at(i-1)) || unicode.IsLetter(at(i+1)) {
			continue
		}
		if digit(at(i-1)) || digit(at(i+1)) || (at(i+1) == '.' || at(i+1) == ',') && digit(at(i+2)) {
			rs[i] = '0'
		}
	}
	return string(rs)
}

// wordRune says whether r belongs to a word for FixCase: a letter, or a
// '0' that may be an 'o' (checked against its neighbours in fixWord).
func wordRune(r rune) bool { return unicode.IsLetter(r) || r == '0' }

func fixWord(w []rune) {
	letters := 0
	for k, r := range w {
		if r != '0' {
			letters++
		} else if (k == 0 || w[k-1] == '0') && (k == len(w)-1 || w[k+1] == '0') {
			return // a zero among zeros, or alone: a number
		}
	}
	if letters < 2 || len(w) < 3 {
		return
	}
	ambiguous := func(r rune) bool { return r == '0' || r == 'l' || r == 'I' || strings.ContainsRune(caseTwins, r) }
	var upper, lower, twinUpper, twinLower int
	for _, r := range w {
		switch {
		case strings.ContainsRune(caseTwins, r) && unicode.IsUpper(r):
			twinUpper++
		case strings.ContainsRune(caseTwins, r):
			twinLower++
		case ambiguous(r):
		case unicode.IsUpper(r):
			upper++
		case unicode.IsLower(r):
			lower++
		}
	}
	if upper == 0 && lower == 0 {
		// Only twins: their majority is the best evidence there is.
		if twinUpper > twinLower {
			upper = 2
		} else {
			lower = 2
		}
	}
	firstUpper := unicode.IsUpper(w[0]) && !ambiguous(w[0]) || w[0] == '0'
	switch {
	case lower == 0 && upper >= 2:
		for k, r := range w {
			switch {
			case r == 'l':
				w[k] = 'I'
			case r == '0':
				w[k] = 'O'
			case r == 's' && k == len(w)-1:
				// a plural of capitals: "PDFs", "URLs"
			case strings.ContainsRune(caseTwins, r):
				w[k] = unicode.ToUpper(r)
			}
		}
	case lower >= 2 && (upper == 0 || upper == 1 && firstUpper):
		for k, r := range w {
			switch {
			case k == 0 && r == '0':
				w[k] = 'O'
			case k == 0:
			case r == 'I':
				w[k] = 'l'
			case r == '0':
				w[k] = 'o'
			case strings.ContainsRune(caseTwins, r):
				w[k] = unicode.ToLower(r)
			}
		}
	}
}
