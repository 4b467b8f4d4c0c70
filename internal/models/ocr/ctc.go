package ocr

import (
	"bufio"
	"fmt"
	"io"
	"strings"
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

// DecodeCTC is greedy CTC decoding of one line's T x C probabilities
// (already softmaxed): the most likely class per step, repeats merged,
// blanks dropped. Class 0 is the blank, 1..len(dict) are dict's
// characters, len(dict)+1 is a space (PaddleOCR's use_space_char); any
// class past that is dropped. The score is the mean probability of the
// characters kept, 0 when none is.
func DecodeCTC(probs []float32, T, C int, dict []string) (string, float32) {
	if C <= 0 || T <= 0 {
		return "", 0
	}
	T = min(T, len(probs)/C)
	var sb strings.Builder
	var sum float64
	var n int
	prev := -1
	for t := 0; t < T; t++ {
		step := probs[t*C : (t+1)*C]
		best, bestP := 0, step[0]
		for c, v := range step[1:] {
			if v > bestP {
				best, bestP = c+1, v
			}
		}
		if best != prev && best != 0 {
			switch {
			case best <= len(dict):
				sb.WriteString(dict[best-1])
			case best == len(dict)+1:
				sb.WriteByte(' ')
			default:
				prev = best
				continue
			}
			sum += float64(bestP)
			n++
		}
		prev = best
	}
	if n == 0 {
		return "", 0
	}
	return sb.String(), float32(sum / float64(n))
}
