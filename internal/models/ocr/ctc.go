package ocr

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LoadDict reads a recognizer's character list, one character a line
// (ppocr_keys_v1.txt). Lines keep their spaces; only the line ends go.
func LoadDict(r io.Reader) ([]string, error) {
	var dict []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		dict = append(dict, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ocr dictionary: %w", err)
	}
	if len(dict) == 0 {
		return nil, fmt.Errorf("read ocr dictionary: no characters")
	}
	return dict, nil
}

// SpaceRule says where DecodeCTC puts back the word spaces that the
// recognizer leaves out, between two consecutive characters the model
// did not already part with a space. Either signal is enough; a negative
// field turns its signal (or its part of one) off, a zero one takes
// DefaultSpaceRule's value.
type SpaceRule struct {
	// MinProb: a space goes where the space class's probability, at any
	// step from the first character's last step to the second's first,
	// is above MinProb. On small type the model often sees the space
	// (probabilities of 0.01 to 0.5) while the blank still wins the step.
	MinProb float32
	// NearSteps and StrongProb: between characters at most NearSteps
	// steps apart (the second's first step minus the first's last), the
	// space class must top StrongProb rather than MinProb. Letters that
	// close up leave no room for a word gap, and on faint, blurred or
	// JPEG-damaged type the space class flickers between them ("Ship t
	// o", "vo lume").
	NearSteps  int
	StrongProb float32
	// Gap: a space goes where the characters' centres are more than Gap
	// times the line's character pitch apart (the median distance between
	// consecutive centres, in steps).
	Gap float64
}

// DefaultSpaceRule is MinProb 0.005, NearSteps 3 with StrongProb 0.02,
// and Gap 2.5.
//
// MinProb and Gap were set on single lines rendered at 12 to 40 px in Go
// Regular and Go Mono (7098 character pairs, 138 of them word gaps the
// model left out). Across those gaps the space class peaked at 0.0117 or
// more, inside words at 0.002 or less but for one pair ("J." at 12 px,
// 0.05, before a full stop, where no space goes anyway): 0.005 lies
// between them with a margin of about two either way, and recovers all
// 138. On ten held-out lines at 13 to 26 px, clean and saved as JPEG at
// quality 30, the character error rate fell from 8.66% to 0.16%. Distance
// alone separates far worse at the recognizer's resolution (a step is 8
// input pixels, a letter 2 or 3 steps): inside words centres stood up to
// 2.0 pitches apart, across gaps as little as 0.7, and the best threshold
// (1.55) found 85 of the 138 with 16 false spaces. So distance is only a
// backstop for gaps wider than any seen inside a word (2.5 pitches,
// against 2.0).
//
// NearSteps and StrongProb were set on whole pages of the ocr-peer
// bench's kinds (JPEG, blur, low contrast, rotation, small type; 1,589
// gaps the rule filled or missed, each judged by whether the page read
// better without it): every false space sat between characters 2 or 3
// steps apart with the space class at 0.0051 to 0.018, while the word
// gaps the model left out were 4 steps or more apart, or rang above
// 0.02, but for a few beside punctuation that punctSpaces settles.
// Across the OCR tests it took low contrast from 2.30% to 1.77% CER,
// JPEG small type at 9 to 12 px from 1.91/1.35/0.90/0.45% to
// 1.58/0.68/0.23/0.23%, and cost one character on one noisy set and
// one on 9,036 of single lines.
func DefaultSpaceRule() SpaceRule {
	return SpaceRule{MinProb: 0.005, NearSteps: 3, StrongProb: 0.02, Gap: 2.5}
}

func (r SpaceRule) withDefaults() SpaceRule {
	d := DefaultSpaceRule()
	if r.MinProb == 0 {
		r.MinProb = d.MinProb
	}
	if r.NearSteps == 0 {
		r.NearSteps = d.NearSteps
	}
	if r.StrongProb == 0 {
		r.StrongProb = d.StrongProb
	}
	if r.Gap == 0 {
		r.Gap = d.Gap
	}
	return r
}

// spacing is how a character stands towards word spaces.
type spacing uint8

const (
	// spaceless characters belong to scripts written without word spaces
	// (Han, kana, Hangul as this dictionary uses it, CJK and full-width
	// punctuation): no space is put beside them.
	spaceless spacing = iota
	// word characters take a space on either side.
	word
	// closing punctuation (, . ; : ! ? and closing brackets) never has a
	// space put before it: on JPEG-damaged type the model gives the space
	// class weight before a comma ("bend , fold"), and English never
	// spaces there.
	closing
	// opening brackets never have a space put after them.
	opening
)

// minPitchSamples is how many character-to-character distances a line
// needs before its median is trusted as the pitch: with fewer, one wide
// gap is as likely a word space as a wide letter.
const minPitchSamples = 3

// ctcChar is one character of a greedy CTC decoding: its class and the
// frames its run of steps covers.
type ctcChar struct {
	class       int
	first, last int
	// prob is the class's probability at the run's first step; it is what
	// the line's score averages.
	prob float32
	// inserted marks a character the model did not emit: a space the gap
	// between its neighbours implies, a mark the line's ink shows
	// (lostMarks). It does not count in the score.
	inserted bool
}

func (c ctcChar) centre() float64 { return float64(c.first+c.last) / 2 }

// greedyCTC is greedy CTC decoding of T x C probabilities that keeps
// where each character was read: the most likely class per step, runs of
// one class merged into one character spanning the run's steps, blanks
// (class 0) dropped. A step of fewer than C values left at the end is
// ignored. A non-nil allow limits the classes that can win a step to
// those it marks true (the blank always can; classes past its end
// cannot): a masked class's weight goes to the best allowed one, which
// for a glyph the model read as its full-width form is its ASCII twin.
func greedyCTC(probs []float32, T, C int, allow []bool) []ctcChar {
	if C <= 0 || T <= 0 {
		return nil
	}
	T = min(T, len(probs)/C)
	var out []ctcChar
	prev := -1
	for t := 0; t < T; t++ {
		step := probs[t*C : (t+1)*C]
		best, bestP := 0, step[0]
		for c, v := range step[1:] {
			if v > bestP && (allow == nil || (c+1 < len(allow) && allow[c+1])) {
				best, bestP = c+1, v
			}
		}
		switch {
		case best == prev && best != 0:
			out[len(out)-1].last = t
		case best != 0:
			out = append(out, ctcChar{class: best, first: t, last: t, prob: bestP})
		}
		prev = best
	}
	return out
}

// insertSpaces puts a space (class space) between two consecutive
// characters where rule says a word gap lies: the space class's
// probability spaceProb[t] tops rule.MinProb (rule.StrongProb between
// characters at most rule.NearSteps steps apart) at a step t from the
// first character's last step to the second's first, or their centres are more
// than rule.Gap pitches apart. The pitch is the median distance between
// the centres of consecutive characters of spaced scripts, within the
// words the model already split (a space the model emits is kept, and no
// distance is measured across it); the median, because a line has more
// letter-to-letter steps than word gaps. The distance test needs
// minPitchSamples distances. Characters of scripts written without spaces
// (Han, kana, full-width forms) never get a space beside them, and their
// wider pitch is not mixed into the Latin one; nor does a space go before
// closing punctuation or after an opening bracket (kind says which is
// which). chars is not modified; negative rule fields are off (rule has
// its defaults applied).
func insertSpaces(chars []ctcChar, spaceProb []float32, space int, kind func(class int) spacing, rule SpaceRule) []ctcChar {
	if len(chars) < 2 || (rule.MinProb < 0 && rule.Gap < 0) {
		return chars
	}
	pair := func(i int) bool {
		a, b := chars[i].class, chars[i+1].class
		return a != space && b != space && kind(a) != spaceless && kind(b) != spaceless
	}
	pitch := 0.0
	if rule.Gap > 0 {
		dists := make([]float64, 0, len(chars)-1)
		for i := 0; i+1 < len(chars); i++ {
			if pair(i) {
				dists = append(dists, chars[i+1].centre()-chars[i].centre())
			}
		}
		if len(dists) >= minPitchSamples {
			pitch = median(dists)
		}
	}
	gapAt := func(i int) bool {
		a, b := chars[i], chars[i+1]
		if rule.MinProb >= 0 {
			need := rule.MinProb
			if b.first-a.last <= rule.NearSteps {
				need = max(need, rule.StrongProb)
			}
			for t := a.last; t <= b.first && t < len(spaceProb); t++ {
				if spaceProb[t] > need {
					return true
				}
			}
		}
		return pitch > 0 && b.centre()-a.centre() > rule.Gap*pitch
	}
	out := make([]ctcChar, 0, len(chars)+len(chars)/4)
	for i, c := range chars {
		out = append(out, c)
		if i+1 < len(chars) && pair(i) && kind(c.class) != opening && kind(chars[i+1].class) != closing && gapAt(i) {
			out = append(out, ctcChar{class: space, first: c.last + 1, last: chars[i+1].first - 1, inserted: true})
		}
	}
	return out
}

// punctSpaces settles the spaces beside punctuation by English usage,
// where the recognizer's evidence is weakest (the glyphs are a few pixels
// wide and the space class barely registers):
//   - a comma, semicolon or colon after a letter and before a letter or
//     digit always takes a space ("ID:ZX" -> "ID: ZX", "Subtotal:38.97"
//     -> "Subtotal: 38.97"), and so does a comma or semicolon after a
//     digit and before a letter ("38.97;tax" -> "38.97; tax"); after a
//     digit a colon is a time or a ratio, and between two digits a comma
//     a thousands comma: they stay tight ("9:30", "1,204");
//   - no space is put between a decimal point or a thousands comma and
//     the digits on either side ("318. 50" -> "318.50");
//   - a slash is spaced on both sides or on neither: between digits (a
//     date, a fraction) an inserted space beside it goes ("12/ 05" ->
//     "12/05"); elsewhere one with a space on one side only gets one on
//     the other too ("ZX-0457/ SOS" -> "ZX-0457 / SOS"), the side with a
//     space being where the evidence was.
//
// Only inserted spaces are removed; one the model emitted stays.
func punctSpaces(chars []ctcChar, dict []string, space int) []ctcChar {
	str := func(cs []ctcChar, i int) string {
		if i < 0 || i >= len(cs) || cs[i].class < 1 || cs[i].class > len(dict) {
			return ""
		}
		return dict[cs[i].class-1]
	}
	letter := func(cs []ctcChar, i int) bool {
		r, _ := utf8.DecodeRuneInString(str(cs, i))
		return unicode.IsLetter(r)
	}
	digit := func(cs []ctcChar, i int) bool { return isDigit(str(cs, i)) }
	spaceAt := func(cs []ctcChar, i int) bool { return i >= 0 && i < len(cs) && cs[i].class == space }
	gap := func(a, b ctcChar) ctcChar {
		return ctcChar{class: space, first: a.last + 1, last: b.first - 1, inserted: true}
	}
	out := make([]ctcChar, 0, len(chars)+2)
	for i, c := range chars {
		if c.inserted && c.class == space && (str(chars, i-1) == "." || str(chars, i-1) == ",") && digit(chars, i-2) && digit(chars, i+1) {
			continue
		}
		out = append(out, c)
		if p := str(chars, i); p == "," || p == ";" || p == ":" {
			afterLetter := letter(chars, i-1) && (letter(chars, i+1) || digit(chars, i+1))
			afterDigit := digit(chars, i-1) && letter(chars, i+1) && p != ":"
			if afterLetter || afterDigit {
				out = append(out, gap(c, chars[i+1]))
			}
		}
	}
	for i := 1; i+1 < len(out); i++ {
		if str(out, i) != "/" {
			continue
		}
		left, right := spaceAt(out, i-1) && i >= 2, spaceAt(out, i+1) && i+2 < len(out)
		if left == right {
			continue
		}
		// the characters beside the slash, past its one space, and where
		// that space is
		prev, next, sp := i-1, i+2, i+1
		if left {
			prev, next, sp = i-2, i+1, i-1
		}
		switch {
		case digit(out, prev) && digit(out, next):
			// a date or a fraction: tight, unless the model spaced it
			if out[sp].inserted {
				out = slices.Delete(out, sp, sp+1)
				if left {
					i--
				}
			}
		case left:
			out = slices.Insert(out, i+1, gap(out[i], out[i+1]))
		default:
			out = slices.Insert(out, i, gap(out[i-1], out[i]))
			i++
		}
	}
	return out
}

// median of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// spacingOf says how each dictionary class stands towards word spaces
// (see spacing). Classes outside the dictionary are spaceless.
func spacingOf(dict []string) func(int) spacing {
	return func(class int) spacing {
		if class < 1 || class > len(dict) {
			return spaceless
		}
		ch := dict[class-1]
		r, _ := utf8.DecodeRuneInString(ch)
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			return spaceless
		case r >= 0x3000 && r <= 0x303f, r >= 0xff00 && r <= 0xffef:
			return spaceless
		case strings.Contains(",.;:!?)]}", ch):
			return closing
		case strings.Contains("([{", ch):
			return opening
		}
		return word
	}
}

// DecodeCTC decodes one line's T x C probabilities (already softmaxed)
// greedily: the most likely class per step, repeats merged, blanks
// dropped. Class 0 is the blank, 1..len(dict) are dict's characters,
// len(dict)+1 is a space (PaddleOCR's use_space_char); any class past that
// is dropped. A non-nil allow (see LatinClasses) limits the classes that
// can be read. Word spaces the model leaves out are put back where rule
// finds a gap (see SpaceRule and insertSpaces). The score is the mean
// probability of the characters the model emitted, 0 when none is.
func DecodeCTC(probs []float32, T, C int, dict []string, allow []bool, rule SpaceRule) (string, float32) {
	return decodeWithInk(probs, T, C, dict, allow, rule, lineInk{})
}

// decodeWithInk is DecodeCTC with the line's ink, by which lostMarks puts
// back the full stops and commas the blank outweighed, caseByHeight
// settles the case of the letters whose shapes differ only in size, and
// markSpaces puts the word gap after a mark.
func decodeWithInk(probs []float32, T, C int, dict []string, allow []bool, rule SpaceRule, ink lineInk) (string, float32) {
	if C <= 0 || T <= 0 {
		return "", 0
	}
	T = min(T, len(probs)/C)
	space := len(dict) + 1
	chars := greedyCTC(probs, T, C, allow)
	chars = slices.DeleteFunc(chars, func(c ctcChar) bool { return c.class > space })
	chars = lostMarks(chars, probs, T, C, dict, allow, ink)
	caseByHeight(chars, dict, allow, ink, T)
	var spaceProb []float32
	if space < C {
		spaceProb = make([]float32, T)
		for t := range spaceProb {
			spaceProb[t] = probs[t*C+space]
		}
	}
	chars = insertSpaces(chars, spaceProb, space, spacingOf(dict), rule.withDefaults())
	chars = markSpaces(chars, dict, space, ink, T)
	chars = punctSpaces(chars, dict, space)
	var sb strings.Builder
	var sum float64
	var n int
	for _, c := range chars {
		if c.class == space {
			sb.WriteByte(' ')
		} else {
			sb.WriteString(dict[c.class-1])
		}
		if !c.inserted {
			sum += float64(c.prob)
			n++
		}
	}
	if n == 0 {
		return "", 0
	}
	return sb.String(), float32(sum / float64(n))
}
