package rollout

import (
	"bytes"
	"encoding/json"
)

// maxTextDistance is the share of characters two OCR texts may differ by
// (edit distance over the longer text's length) and still agree: a new
// recognizer may fix or lose a character without being wrong.
const maxTextDistance = 0.1

// maxCompareRunes bounds the texts compared: the edit distance costs their
// product, and an output is not made trustworthy by its length.
const maxCompareRunes = 2000

// Agree says whether two versions' outputs for one input agree: the same
// top label for classifiers, OCR texts within maxTextDistance, and equal
// JSON for anything else. A failure agrees only with a failure.
func Agree(a, b json.RawMessage, aFailed, bFailed bool) bool {
	if aFailed || bFailed {
		return aFailed == bFailed
	}
	var x, y struct {
		Label *string `json:"label"`
		Text  *string `json:"text"`
	}
	if json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil {
		switch {
		case x.Label != nil && y.Label != nil:
			return *x.Label == *y.Label
		case x.Text != nil && y.Text != nil:
			return TextDistance(*x.Text, *y.Text) <= maxTextDistance
		}
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// TextDistance is the Levenshtein distance of two texts over the longer
// one's length (0: equal, 1: nothing in common), on at most
// maxCompareRunes runes of each.
func TextDistance(a, b string) float64 {
	x, y := []rune(a), []rune(b)
	if len(x) > maxCompareRunes {
		x = x[:maxCompareRunes]
	}
	if len(y) > maxCompareRunes {
		y = y[:maxCompareRunes]
	}
	n := max(len(x), len(y))
	if n == 0 {
		return 0
	}
	prev, cur := make([]int, len(y)+1), make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(y)]) / float64(n)
}
