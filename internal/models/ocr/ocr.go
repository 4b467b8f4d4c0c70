package ocr

import (
	"errors"
	"fmt"
	"image"
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
	in, h, w := detInputRGB(src, p.MaxSide)
	outs, err := det.Run(detTensor(in, h, w))
	if err != nil {
		return Result{}, fmt.Errorf("ocr detection: %w", err)
	}
	if len(outs) == 0 || outs[0].DType != ort.Float32 || len(outs[0].Float32) < h*w {
		return Result{}, fmt.Errorf("ocr detection: want a float32 [1,1,%d,%d] probability map, got %d outputs", h, w, len(outs))
	}
	quads := Boxes(outs[0].Float32[:h*w], h, w, src.w, src.h, p)
	return recognizeQuads(src, quads, rec, dict, p)
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
	decode := func(probs []float32, T, C int) (string, float32) {
		if !checked {
			checked, headErr = true, checkHead(dict, p.Allow, C)
		}
		text, score := read(probs, T, C)
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
