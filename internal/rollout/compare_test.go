package rollout

import (
	"encoding/json"
	"testing"
)

func TestAgree(t *testing.T) {
	cases := []struct {
		a, b   string
		fa, fb bool
		want   bool
		why    string
	}{
		{`{"label":"7","score":0.9}`, `{"label":"7","score":0.6}`, false, false, true, "same top label, other scores"},
		{`{"label":"7"}`, `{"label":"1"}`, false, false, false, "other label"},
		{`{"text":"Invoice 2026-12-04 total 41.50"}`, `{"text":"Invoice 2026-12-04 total 41.5O"}`, false, false, true, "one character off"},
		{`{"text":"Invoice 2026-12-04 total 41.50"}`, `{"text":"lnvo1ce 2O26-I2-O4 tota1 4I.5O"}`, false, false, false, "many characters off"},
		{`{"bytes":3,"sha256":"ab"}`, `{ "bytes": 3, "sha256": "ab" }`, false, false, true, "equal JSON"},
		{`{"bytes":3,"sha256":"ab"}`, `{"bytes":3,"sha256":"cd"}`, false, false, false, "other JSON"},
		{`{"label":"7"}`, ``, false, true, false, "one failed"},
		{``, ``, true, true, true, "both failed"},
	}
	for _, c := range cases {
		if got := Agree(json.RawMessage(c.a), json.RawMessage(c.b), c.fa, c.fb); got != c.want {
			t.Errorf("%s: Agree = %v", c.why, got)
		}
	}
}

func TestTextDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want float64
	}{{"", "", 0}, {"abc", "abc", 0}, {"abc", "abd", 1.0 / 3}, {"", "abcd", 1}, {"kitten", "sitting", 3.0 / 7}} {
		if got := TextDistance(c.a, c.b); got != c.want {
			t.Errorf("TextDistance(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// BenchmarkAgree is the comparison's own cost per shadowed job, beside
// the second inference run it follows.
func BenchmarkAgree(b *testing.B) {
	x := json.RawMessage(`{"label":"7","score":0.91,"top":[{"label":"7","score":0.91},{"label":"1","score":0.05},{"label":"9","score":0.02}]}`)
	y := json.RawMessage(`{"label":"7","score":0.88,"top":[{"label":"7","score":0.88},{"label":"9","score":0.07},{"label":"1","score":0.03}]}`)
	for b.Loop() {
		Agree(x, y, false, false)
	}
}

func BenchmarkAgreeOCR(b *testing.B) {
	line := "The quick brown fox jumps over the lazy dog 0123456789. "
	var s string
	for len(s) < 1000 {
		s += line
	}
	x, _ := json.Marshal(map[string]string{"text": s})
	y, _ := json.Marshal(map[string]string{"text": s[:len(s)-3] + "xyz"})
	for b.Loop() {
		Agree(x, y, false, false)
	}
}
