package ocr

import (
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"strings"

	"github.com/inferq/inferq/internal/ort"
)

// Runner runs one ONNX graph; *ort.Session satisfies it. The pipeline takes
// Runners rather than sessions so that the worker can put a batching layer
// (or a test double) in between.
type Runner interface {
	Run(inputs []ort.Tensor) ([]ort.Tensor, error)
}

// Params tune the pipeline. A zero field takes its default from
// DefaultParams, so Params{} is usable.
type Params struct {
	// MaxSide bounds the longer side of the detection input (pages are
	// never enlarged; both sides are rounded to multiples of 32).
	MaxSide int
	// FineSide is the longer side a page is detected at again when
	// MaxSide shrank it and its text is small: the median line box is
	// under SmallText page pixels high. Negative: never again.
	FineSide int
	// SmallText is the line box height, in page pixels, under which a
	// page's text is small (see FineSide).
	SmallText float64
	// Thresh binarizes the detection probability map.
	Thresh float32
	// BoxThresh drops regions whose mean probability is lower.
	BoxThresh float32
	// UnclipRatio sets how far a region grows back: the detector is trained
	// on shrunk text, so each box is offset outward by
	// area*UnclipRatio/perimeter.
	UnclipRatio float64
	// MinSize drops regions whose shorter side (in detection pixels) is
	// smaller.
	MinSize float64
	// MaxLines caps the lines read per page (in reading order); 0 means no
	// cap.
	MaxLines int
	// RecBatch is how many lines one recognition run takes at most.
	RecBatch int
	// RecSpread: no line of a recognition run is more than RecSpread
	// times as wide (for its height) as the run's narrowest; a wider one
	// starts the next run, so that little of a run is padding. Negative
	// means any width (a GPU, where a padded batch costs little more
	// than one line).
	RecSpread float64
	// DropScore drops lines whose recognition score is lower (PaddleOCR's
	// drop_score); a negative value keeps every non-empty line.
	DropScore float32
	// Spaces says where the word spaces the recognizer leaves out are put
	// back (SpaceRule; zero fields take DefaultSpaceRule's values,
	// negative ones are off: SpaceRule{-1, -1} keeps only the spaces the
	// model emits).
	Spaces SpaceRule
	// Allow marks the recognizer's classes that may be read (LatinClasses,
	// CharsetClasses); nil reads every class of the dictionary.
	Allow []bool
}

// DefaultParams are PaddleOCR's settings for PP-OCRv4: limit side 960,
// thresh 0.3, box thresh 0.6, rec batch 6, drop score 0.5, and unclip
// ratio 2.0, the value of PaddleOCR 3's and PaddleX's OCR pipelines rather
// than PaddleOCR 2's 1.5. The wider margin matters: with 1.5 the crops of
// small type are cut tight to the glyphs and the recognizer drops the
// spaces between words (CER 8.5% against 3.2% on the rendered test pages).
// RecSpread 1.1 is ours (see recognizeLines): runs of lines within a
// tenth of each other's width.
func DefaultParams() Params {
	return Params{
		MaxSide:     960,
		FineSide:    2048,
		SmallText:   32,
		Thresh:      0.3,
		BoxThresh:   0.6,
		UnclipRatio: 2.0,
		MinSize:     3,
		RecBatch:    6,
		RecSpread:   1.1,
		DropScore:   0.5,
		Spaces:      DefaultSpaceRule(),
	}
}

func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.MaxSide <= 0 {
		p.MaxSide = d.MaxSide
	}
	if p.FineSide == 0 {
		p.FineSide = d.FineSide
	}
	if p.SmallText <= 0 {
		p.SmallText = d.SmallText
	}
	if p.Thresh <= 0 {
		p.Thresh = d.Thresh
	}
	if p.BoxThresh <= 0 {
		p.BoxThresh = d.BoxThresh
	}
	if p.UnclipRatio <= 0 {
		p.UnclipRatio = d.UnclipRatio
	}
	if p.MinSize <= 0 {
		p.MinSize = d.MinSize
	}
	if p.RecBatch <= 0 {
		p.RecBatch = d.RecBatch
	}
	if p.RecSpread == 0 {
		p.RecSpread = d.RecSpread
	}
	if p.DropScore == 0 {
		p.DropScore = d.DropScore
	}
	p.Spaces = p.Spaces.withDefaults()
	return p
}

// Line is one recognized text line: its text, the recognizer's confidence
// and its box in page pixels, clockwise from the top-left corner.
type Line struct {
	Text  string    `json:"text"`
	Score float32   `json:"score"`
	Box   [4][2]int `json:"box"`
}

// Result is the answer for one page (API.md's ocr result).
type Result struct {
	// Text is the lines' texts joined by "\n", top to bottom.
	Text  string `json:"text"`
	Lines []Line `json:"lines"`
}

// Quad is a text region in page pixels: four corners clockwise from the
// top-left one, as [x, y].
type Quad [4][2]int

// points are the quad's corners as points.
func (q Quad) points() [4]point {
	var pts [4]point
	for i, c := range q {
		pts[i] = pointOf(c)
	}
	return pts
}

// size is the rectangle a line's crop is warped to: the longer of the
// top and bottom sides by the longer of the left and right ones.
func (q Quad) size() (w, h float64) {
	p := q.points()
	return math.Max(p[0].dist(p[1]), p[2].dist(p[3])), math.Max(p[0].dist(p[3]), p[1].dist(p[2]))
}

// ErrEmptyImage is returned for an image with no pixels.
var ErrEmptyImage = errors.New("ocr: image has no pixels")

// Recognize reads the text of one page: one detection run, then the lines
// it finds in batches of p.RecBatch recognition runs. dict is the
// recognizer's character list (LoadDict). A page without text gives a
// Result with no lines and no error.
func Recognize(img image.Image, det, rec Runner, dict []string, p Params) (Result, error) {
	p = p.withDefaults()
	src, err := toRGB(img)
	if err != nil {
		return Result{}, err
	}
	quads, err := detect(src, det, p.MaxSide, p)
	if err != nil {
		return Result{}, err
	}
	if side := fineSide(quads, src.w, src.h, p); side > 0 {
		if quads, err = detect(src, det, side, p); err != nil {
			return Result{}, err
		}
	}
	return recognizeQuads(src, quads, rec, dict, p)
}

// detect runs the detector on the page scaled to maxSide (DetSize) and
// returns its line boxes in page pixels.
func detect(src *rgbImage, det Runner, maxSide int, p Params) ([]Quad, error) {
	in, h, w := detInputRGB(src, maxSide)
	outs, err := det.Run(detTensor(in, h, w))
	if err != nil {
		return nil, fmt.Errorf("ocr detection: %w", err)
	}
	if len(outs) == 0 || outs[0].DType != ort.Float32 || len(outs[0].Float32) < h*w {
		return nil, fmt.Errorf("ocr detection: want a float32 [1,1,%d,%d] probability map, got %d outputs", h, w, len(outs))
	}
	return Boxes(outs[0].Float32[:h*w], h, w, src.w, src.h, p), nil
}

// fineSide says whether a page detected at p.MaxSide is detected again,
// nearer its own size, and at what longer side (0: not again). Small type
// on a large page needs it: an A4 page at 150 dpi (1240x1754) detected at
// 960 shrinks 12-17 px type to 7-9 px, and the boxes found there cut the
// recognizer's crops too loosely or not at all. Saved as JPEG at quality
// 40, with 30 lines of 12, 14 and 17 px type, such a page read with 27.9,
// 11.4 and 1.0% of its characters wrong when detected at 960, and 1.3,
// 0.46 and 0.35% at its own size; at 1280, 4.2, 1.5 and 0.95%. Large type
// loses nothing at 960 (33 px type on the same page at 300 dpi, 2480x3508:
// 0.18% at 960, 0.07% at 1760 for half again the time; on an A4 page at
// 150 dpi, 24 and 28 px type read as well at 960, 0.14 and 0.00%), and a
// second pass costs a sparse page most: the detector at 1754x1248 takes
// 300-350 ms on one thread, at 960 100-130. So only a page whose median
// line box is under p.SmallText page pixels high is detected again, at its
// own size up to p.FineSide: 32 takes in 17 px type (boxes of 27) and 19
// px (31), and leaves 21 px (32: 0.85% at 960, 0.25% again), 24 px (33)
// and 28 px (38).
func fineSide(quads []Quad, w, h int, p Params) int {
	long := max(w, h)
	if p.FineSide <= p.MaxSide || long <= p.MaxSide || len(quads) == 0 {
		return 0
	}
	heights := make([]float64, len(quads))
	for i, q := range quads {
		heights[i] = math.Min(q.size())
	}
	sort.Float64s(heights)
	if heights[len(heights)/2] >= p.SmallText {
		return 0
	}
	return min(long, p.FineSide)
}

// RecognizeQuads runs only the recognition half on regions found
// elsewhere (for instance by a batched detection run and Boxes), in the
// order given.
func RecognizeQuads(img image.Image, quads []Quad, rec Runner, dict []string, p Params) (Result, error) {
	p = p.withDefaults()
	src, err := toRGB(img)
	if err != nil {
		return Result{}, err
	}
	return recognizeQuads(src, quads, rec, dict, p)
}

func recognizeQuads(src *rgbImage, quads []Quad, rec Runner, dict []string, p Params) (Result, error) {
	if p.MaxLines > 0 && len(quads) > p.MaxLines {
		quads = quads[:p.MaxLines]
	}
	read := headDecoder(dict, p.Allow, p.Spaces)
	checked := false
	var headErr error
	decode := func(probs []float32, T, C int, ink lineInk) (string, float32) {
		if !checked {
			checked, headErr = true, checkHead(dict, p.Allow, C)
		}
		text, score := read(probs, T, C, ink)
		return FixCase(text), score
	}
	texts, scores, err := recognizeLines(src, quads, rec, decode, p.RecBatch, p.RecSpread)
	if err != nil {
		return Result{}, err
	}
	if headErr != nil {
		return Result{}, fmt.Errorf("ocr recognition: %w", headErr)
	}
	res := Result{Lines: []Line{}}
	var sb strings.Builder
	for i, q := range quads {
		if strings.TrimSpace(texts[i]) == "" || scores[i] < p.DropScore {
			continue
		}
		if len(res.Lines) > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(texts[i])
		res.Lines = append(res.Lines, Line{Text: texts[i], Score: scores[i], Box: q})
	}
	res.Text = sb.String()
	return res, nil
}

// detTensor wraps one page's detection input as the det model's batch of
// one.
func detTensor(in []float32, h, w int) []ort.Tensor {
	return []ort.Tensor{{Shape: []int64{1, 3, int64(h), int64(w)}, DType: ort.Float32, Float32: in}}
}
