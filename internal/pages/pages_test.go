package pages

import (
	"strings"
	"testing"
)

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"€uro", "euro", 1}, {"same", "same", 0}} {
		if got := Levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	e, n := Errors([]string{"helo", "world", "extra"}, []string{"hello", "world"})
	if e != 1+5 || n != 10 {
		t.Fatalf("Errors = %d/%d, want 6/10", e, n)
	}
	if e, n := Errors(nil, []string{"abc"}); e != 3 || n != 3 {
		t.Fatalf("missing line: %d/%d", e, n)
	}
}

func TestRender(t *testing.T) {
	img, err := Render(Regular, 20, Lines[0])
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() < 200 || b.Dy() < 4*20 {
		t.Fatalf("page %v too small for four lines", b)
	}
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.RGBAAt(x, y).R < 128 {
				dark++
			}
		}
	}
	if dark == 0 || dark > b.Dx()*b.Dy()/4 {
		t.Fatalf("%d dark pixels of %d: no text, or not text", dark, b.Dx()*b.Dy())
	}
}

// TestFullPage: a full page is 30 lines of three passage lines each,
// starting at the k-th passage, on a white A4 page at 150 dpi.
func TestFullPage(t *testing.T) {
	lines := FullPage(HeldOutLines, 1)
	if len(lines) != 30 {
		t.Fatalf("%d lines, want 30", len(lines))
	}
	if want := strings.Join(HeldOutLines[1][:3], " "); lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	text, err := Render(Regular, 14, lines)
	if err != nil {
		t.Fatal(err)
	}
	page := A4(text)
	if b := page.Bounds(); b.Dx() != 1240 || b.Dy() != 1754 {
		t.Errorf("page %v, want 1240x1754", b)
	}
	if r, g, b, _ := page.At(1200, 1700).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff {
		t.Error("the page's margin is not white")
	}
}
