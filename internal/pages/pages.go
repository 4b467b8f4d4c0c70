// Package pages makes the documents that the OCR tests, the demo and the
// benchmarks send through the fleet: text pages rendered with the Go fonts,
// whose true text is known, and the character error rate of a reading.
package pages

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Fonts the pages are set in.
var (
	Regular = goregular.TTF
	Mono    = gomono.TTF
)

// Lines are sample lines of the kind scanned business documents hold.
var Lines = [][]string{
	{
		"Invoice 2041 total 318.50 EUR",
		"Ship to: 42 Elm Street, Springfield",
		"Order #7719 placed on 2024-03-15",
		"Thank you for your business!",
	},
	{
		"Qty 3 x widget (blue) @ 12.99 each",
		"Subtotal: 38.97; tax 7.41",
		"Call 555-0143 before 9:30 am",
		"Reference ABX-99/2 paid in full.",
	},
}

// HeldOutLines are passages of the same kind written for the ocr-peer
// bench after the fleet's OCR settings were chosen: no setting was tried
// against them, so a set's CER on them says how the reading carries over
// to text it was not tuned on.
var HeldOutLines = [][]string{
	{
		"Delivery note 88-412 for Harbour Cafe",
		"Pallets: 6 (flour, sugar, 2 of oil)",
		"Driver J. Okafor, van KX 19 TRB",
		"Received in good order at 07:45",
	},
	{
		"Statement period 01/10/2025 - 31/10/2025",
		"Opening balance 2,450.00 GBP",
		"Card payment Nov 3: -18.60",
		"Closing balance 2,431.40 GBP",
	},
	{
		"Quote Q-3307, valid for 30 days",
		"Labour 12 hrs @ 45.00 = 540.00",
		"Parts: hinge set, seal kit, 4 clamps",
		"Total excl. tax 812.35 EUR",
	},
	{
		"Dear Ms Novak,",
		"Thank you for your letter of 9 May.",
		"Your claim No. 55-A is now closed;",
		"a cheque for 120.00 will follow.",
	},
	{
		"PACKING LIST - FRAGILE",
		"Box 1 of 3: glassware, 24 pcs",
		"Box 2 of 3: ceramic plates (white)",
		"Box 3 of 3: cutlery, napkins",
	},
	{
		"Meeting room B4 booked 14:00-15:30",
		"Attendees: Kim, Patel, de Vries",
		"Agenda: budget review, Q3 targets",
		"Minutes to follow by e-mail",
	},
	{
		"Serial no. 7Q2-LX09-881 (model T5)",
		"Warranty ends 2027-06-30",
		"Service hotline +1 800 555 0199",
		"Keep this card with your receipt",
	},
	{
		"Tax ID DE 812 334 190",
		"Bank: Nordbank, IBAN DE44 5001 0517",
		"Pay by 15 Jan 2026 quoting ref 4471",
		"Late payment fee: 2% per month",
	},
}

// Render draws lines black on white in the font ttf, size pixels high,
// with a margin of one size around them.
func Render(ttf []byte, size float64, lines []string) (*image.RGBA, error) {
	f, err := opentype.Parse(ttf)
	if err != nil {
		return nil, err
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, err
	}
	defer face.Close()
	margin := int(size)
	lineH := int(size * 1.8)
	width := 0
	for _, l := range lines {
		width = max(width, font.MeasureString(face, l).Ceil())
	}
	img := image.NewRGBA(image.Rect(0, 0, width+2*margin, len(lines)*lineH+2*margin))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(margin, margin+i*lineH+int(size))
		d.DrawString(l)
	}
	return img, nil
}

// A4 sets a rendered block of text on a white A4 page at 150 dpi
// (1240x1754, the resolution documents are rendered at), 100 px in from
// its top left corner; a block too large for the page makes it larger.
func A4(text image.Image) *image.RGBA {
	tb := text.Bounds()
	page := image.NewRGBA(image.Rect(0, 0, max(1240, tb.Dx()+200), max(1754, tb.Dy()+200)))
	draw.Draw(page, page.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(page, tb.Add(image.Pt(100, 100)), text, tb.Min, draw.Src)
	return page
}

// FullPage is 30 lines of 70 to 110 characters, three of the passages'
// lines to each, taking the passages from the k-th on (and round again):
// a full page of text.
func FullPage(passages [][]string, k int) []string {
	var src []string
	for i := range passages {
		src = append(src, passages[(k+i)%len(passages)]...)
	}
	var out []string
	for i := 0; len(out) < 30; i += 3 {
		out = append(out, src[i%len(src)]+" "+src[(i+1)%len(src)]+" "+src[(i+2)%len(src)])
	}
	return out
}

// PNG renders a page and encodes it.
func PNG(ttf []byte, size float64, lines []string) ([]byte, error) {
	img, err := Render(ttf, size, lines)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = png.Encode(&b, img)
	return b.Bytes(), err
}

// Levenshtein is the edit distance between a and b, in runes.
func Levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Errors counts the edits from the lines read to the lines wanted, line by
// line (missing lines cost their length, extra lines theirs), and the
// characters wanted: their ratio is the character error rate.
func Errors(got, want []string) (edits, chars int) {
	for i, w := range want {
		g := ""
		if i < len(got) {
			g = got[i]
		}
		edits += Levenshtein(g, w)
		chars += len([]rune(w))
	}
	for _, extra := range got[min(len(want), len(got)):] {
		edits += len([]rune(extra))
	}
	return edits, chars
}
