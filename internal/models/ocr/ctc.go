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

// DefaultSpaceGap is the gap, in the line's median character pitch, past
// which two characters are taken to be separate words (Params.SpaceGap).
const DefaultSpaceGap = 1.55

// minPitchSamples is how many character-to-character distances a line
// needs before its median is trusted as the pitch: with fewer, one wide
// gap is as likely a word space as a wide letter, and nothing is inserted.
const minPitchSamples = 3

// ctcChar is one character of a greedy CTC decoding: its class and the
// frames its run of steps covers.
type ctcChar struct {
	class       int
	first, last int
	// prob is the class's probability at the run's first step; it is what
	// the line's score averages.
	prob float32
	// inserted marks a space that the model did not emit but the gap
	// between its neighbours implies; it does not count in the score.
	inserted bool
}

func (c ctcChar) centre() float64 { return float64(c.first+c.last) / 2 }

// greedyCTC is greedy CTC decoding of T x C probabilities that keeps
// where each character was read: the most likely class per step, runs of
// one class merged into one character spanning the run's steps, blanks
// (class 0) dropped. A step of fewer than C values left at the end is
// ignored.
func greedyCTC(probs []float32, T, C int) []ctcChar {
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
			if v > bestP {
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

// insertSpaces puts a space between two consecutive characters whose
// centres lie more than gap times the line's character pitch apart. The
// pitch is the median distance between the centres of consecutive
// characters of spaced scripts, within words the model already split (a
// space the model emits is kept and no distance is measured across it).
// The median, not the mean, because a line has more letter-to-letter
// steps than word gaps, so the word gaps do not pull it. Characters of
// scripts written without spaces (Han, kana, full-width forms) take no
// part: a space is never put next to one, and their wider pitch is not
// mixed into the Latin one. A line with fewer than minPitchSamples
// distances, or gap <= 0, comes back as it is. space is the space class;
// chars are not modified.
func insertSpaces(chars []ctcChar, space int, spaced func(class int) bool, gap float64) []ctcChar {
	if gap <= 0 || len(chars) < 2 {
		return chars
	}
	pair := func(i int) bool {
		a, b := chars[i].class, chars[i+1].class
		return a != space && b != space && spaced(a) && spaced(b)
	}
	dists := make([]float64, 0, len(chars)-1)
	for i := 0; i+1 < len(chars); i++ {
		if pair(i) {
			dists = append(dists, chars[i+1].centre()-chars[i].centre())
		}
	}
	if len(dists) < minPitchSamples {
		return chars
	}
	pitch := median(dists)
	if pitch <= 0 {
		return chars
	}
	out := make([]ctcChar, 0, len(chars)+len(chars)/4)
	for i, c := range chars {
		out = append(out, c)
		if i+1 < len(chars) && pair(i) && chars[i+1].centre()-c.centre() > gap*pitch {
			out = append(out, ctcChar{class: space, first: c.last + 1, last: chars[i+1].first - 1, inserted: true})
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

// spacedClass reports whether a dictionary class belongs to a script
// written with spaces between words: anything but Han, kana, Hangul and
// the CJK and full-width punctuation blocks. Classes outside the
// dictionary are not.
func spacedClass(dict []string) func(int) bool {
	return func(class int) bool {
		if class < 1 || class > len(dict) {
			return false
		}
		r, _ := utf8.DecodeRuneInString(dict[class-1])
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			return false
		case r >= 0x3000 && r <= 0x303f, r >= 0xff00 && r <= 0xffef:
			return false
		}
		return true
	}
}

// DecodeCTC decodes one line's T x C probabilities (already softmaxed)
// greedily: the most likely class per step, repeats merged, blanks
// dropped. Class 0 is the blank, 1..len(dict) are dict's characters,
// len(dict)+1 is a space (PaddleOCR's use_space_char); any class past that
// is dropped. Word spaces the model leaves out are put back where
// characters stand more than spaceGap times the line's character pitch
// apart (insertSpaces); spaceGap <= 0 keeps only the model's own spaces.
// The score is the mean probability of the characters the model emitted,
// 0 when none is.
func DecodeCTC(probs []float32, T, C int, dict []string, spaceGap float64) (string, float32) {
	space := len(dict) + 1
	chars := greedyCTC(probs, T, C)
	chars = slices.DeleteFunc(chars, func(c ctcChar) bool { return c.class > space })
	chars = insertSpaces(chars, space, spacedClass(dict), spaceGap)
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
