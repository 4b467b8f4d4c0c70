package ocr

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMinAreaRectAxisAligned(t *testing.T) {
	// The pixels of a 10 x 5 block, as a contour sees them: centres 0..9
	// by 0..4, so the rectangle through them is 9 x 4.
	var pts []point
	for y := 0; y < 5; y++ {
		for x := 0; x < 10; x++ {
			pts = append(pts, point{float64(x) + 20, float64(y) + 7})
		}
	}
	r := minAreaRect(convexHull(pts))
	if !near(r.w, 9, 1e-9) || !near(r.h, 4, 1e-9) {
		t.Fatalf("size %.3f x %.3f, want 9 x 4", r.w, r.h)
	}
	if !near(r.c.x, 24.5, 1e-9) || !near(r.c.y, 9, 1e-9) {
		t.Fatalf("center %v, want (24.5, 9)", r.c)
	}
	want := [4]point{{20, 7}, {29, 7}, {29, 11}, {20, 11}}
	for i, c := range r.corners() {
		if !near(c.x, want[i].x, 1e-9) || !near(c.y, want[i].y, 1e-9) {
			t.Fatalf("corners %v, want %v", r.corners(), want)
		}
	}
}

func TestMinAreaRectRotated30(t *testing.T) {
	const w, h = 40.0, 10.0
	angle := 30 * math.Pi / 180
	u := point{math.Cos(angle), math.Sin(angle)}
	v := u.perp()
	c := point{100, 80}
	at := func(a, b float64) point { return c.add(u.scale(a)).add(v.scale(b)) }
	topLeft := at(-w/2, -h/2)
	pts := []point{topLeft, at(w/2, -h/2), at(w/2, h/2), at(-w/2, h/2)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		pts = append(pts, at((rng.Float64()-0.5)*w, (rng.Float64()-0.5)*h))
	}
	r := minAreaRect(convexHull(pts))
	if !near(r.w, w, 1e-6) || !near(r.h, h, 1e-6) {
		t.Fatalf("size %.4f x %.4f, want %v x %v", r.w, r.h, w, h)
	}
	if !near(r.c.x, c.x, 1e-6) || !near(r.c.y, c.y, 1e-6) {
		t.Fatalf("center %v, want %v", r.c, c)
	}
	if got := math.Atan2(r.u.y, r.u.x) * 180 / math.Pi; !near(got, 30, 1e-6) {
		t.Fatalf("angle %.4f°, want 30°", got)
	}
	// Clockwise from top-left: the corner with the smallest x (the left
	// end of the long side, tilted down to the right) comes first, and the
	// walk turns right (positive cross products in y-down coordinates).
	cs := r.corners()
	if !near(cs[0].x, topLeft.x, 1e-6) || !near(cs[0].y, topLeft.y, 1e-6) {
		t.Fatalf("first corner %v, want %v", cs[0], topLeft)
	}
	for i := range cs {
		if cross3(cs[i], cs[(i+1)%4], cs[(i+2)%4]) <= 0 {
			t.Fatalf("corners %v do not run clockwise", cs)
		}
	}
}

func TestMinAreaRectDegenerate(t *testing.T) {
	if r := minAreaRect(convexHull(nil)); r.w != 0 || r.h != 0 {
		t.Fatalf("empty: %+v", r)
	}
	if r := minAreaRect(convexHull([]point{{3, 4}, {3, 4}})); r.w != 0 || r.h != 0 || r.c != (point{3, 4}) {
		t.Fatalf("one point: %+v", r)
	}
	r := minAreaRect(convexHull([]point{{0, 0}, {5, 0}, {10, 0}}))
	if !near(r.w, 10, 1e-9) || r.h != 0 {
		t.Fatalf("collinear: %+v", r)
	}
}

func TestUnclip(t *testing.T) {
	// A 100 x 10 rectangle: area 1000, perimeter 220, so ratio 1.5 moves
	// every side out by 1000*1.5/220.
	d := unclipDistance(100, 10, 1.5)
	if !near(d, 1500.0/220, 1e-12) {
		t.Fatalf("distance %v, want %v", d, 1500.0/220)
	}
	r := rotRect{c: point{50, 5}, u: point{1, 0}, w: 100, h: 10}.unclip(1.5)
	if !near(r.w, 100+2*d, 1e-12) || !near(r.h, 10+2*d, 1e-12) || r.c != (point{50, 5}) {
		t.Fatalf("unclipped %+v", r)
	}
	if unclipDistance(0, 0, 2) != 0 {
		t.Fatal("a point must not grow")
	}
}

func TestOrderClockwise(t *testing.T) {
	want := [4]point{{10, 20}, {110, 20}, {110, 50}, {10, 50}}
	for _, in := range [][4]point{
		{{110, 50}, {10, 20}, {10, 50}, {110, 20}},
		{{10, 50}, {110, 50}, {110, 20}, {10, 20}},
		want,
	} {
		if got := orderClockwise(in); got != want {
			t.Fatalf("orderClockwise(%v) = %v, want %v", in, got, want)
		}
	}
	// Tilted: the top edge rises to the right.
	tilted := [4]point{{0, 10}, {50, 0}, {52, 10}, {2, 20}}
	got := orderClockwise([4]point{tilted[2], tilted[0], tilted[3], tilted[1]})
	if got != tilted {
		t.Fatalf("tilted: got %v, want %v", got, tilted)
	}
}

func TestSortQuads(t *testing.T) {
	box := func(x, y int) Quad { return Quad{{x, y}, {x + 50, y}, {x + 50, y + 20}, {x, y + 20}} }
	qs := []Quad{
		box(300, 100), // second line, right word, 5 px higher than its left neighbour
		box(10, 200),  // third line
		box(10, 105),  // second line, left word
		box(200, 10),  // first line, right
		box(10, 12),   // first line, left, 2 px lower
	}
	sortQuads(qs)
	want := []Quad{box(10, 12), box(200, 10), box(10, 105), box(300, 100), box(10, 200)}
	for i := range want {
		if qs[i] != want[i] {
			t.Fatalf("order %v, want %v", qs, want)
		}
	}
	// 10 px apart is a new line, even if further left.
	qs = []Quad{box(10, 110), box(300, 100)}
	sortQuads(qs)
	if qs[0] != box(300, 100) {
		t.Fatalf("tops 10 px apart must keep top-to-bottom order: %v", qs)
	}
}

func TestHomography(t *testing.T) {
	from := [4]point{{0, 0}, {100, 0}, {100, 20}, {0, 20}}
	to := [4]point{{10, 30}, {108, 12}, {112, 34}, {13, 52}}
	h, ok := homography(from, to)
	if !ok {
		t.Fatal("homography failed")
	}
	for i, p := range from {
		d := h[6]*p.x + h[7]*p.y + h[8]
		x := (h[0]*p.x + h[1]*p.y + h[2]) / d
		y := (h[3]*p.x + h[4]*p.y + h[5]) / d
		if !near(x, to[i].x, 1e-9) || !near(y, to[i].y, 1e-9) {
			t.Fatalf("maps %v to (%v, %v), want %v", p, x, y, to[i])
		}
	}
	if _, ok := homography(from, [4]point{{1, 1}, {1, 1}, {1, 1}, {1, 1}}); ok {
		t.Fatal("collapsed quad must fail")
	}
}
