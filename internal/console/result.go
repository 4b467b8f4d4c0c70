package console

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/inferq/inferq/internal/jobs"
)

// A job's result as the job page draws it: the OCR model's lines with
// their boxes drawn over the page image; a classifier's top labels; a
// document's pages; anything else as JSON.

type ocrLine struct {
	Text  string      `json:"text"`
	Score float64     `json:"score"`
	Box   [][]float64 `json:"box"`
}

type label struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

type rawResult struct {
	Text        string    `json:"text"`
	Lines       []ocrLine `json:"lines"`
	Top         []label   `json:"top"`
	Pages       int       `json:"pages"`
	PageResults []struct {
		Page   int       `json:"page"`
		Source string    `json:"source"`
		Text   string    `json:"text"`
		Lines  []ocrLine `json:"lines"`
	} `json:"page_results"`
	OutputURL string `json:"output_url"`
}

// resultView is what the job template shows.
type resultView struct {
	Kind    string // "ocr", "document", "labels", "raw", "stored" or ""
	Overlay template.HTML
	Lines   []ocrLine
	Top     []label
	Pages   []string
	JSON    string
}

func (c *Console) result(ctx context.Context, j *jobs.Job) resultView {
	if len(j.Result) == 0 {
		return resultView{}
	}
	var raw rawResult
	if err := json.Unmarshal(j.Result, &raw); err != nil {
		return resultView{Kind: "raw", JSON: string(j.Result)}
	}
	pretty := func() string {
		var v any
		_ = json.Unmarshal(j.Result, &v)
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	}
	switch {
	case raw.OutputURL != "":
		return resultView{Kind: "stored"}
	case len(raw.PageResults) > 0:
		v := resultView{Kind: "document"}
		for _, p := range raw.PageResults {
			v.Pages = append(v.Pages, fmt.Sprintf("page %d (%s):\n%s", p.Page, p.Source, p.Text))
		}
		return v
	case raw.Lines != nil:
		w, h, ok := c.imageSize(ctx, j)
		return resultView{Kind: "ocr", Lines: raw.Lines, Overlay: overlay(j.ID, raw.Lines, w, h, ok)}
	case raw.Top != nil:
		return resultView{Kind: "labels", Top: raw.Top}
	}
	return resultView{Kind: "raw", JSON: pretty()}
}

// overlay draws the OCR boxes as SVG polygons over the page image (when
// the input is a stored raster image) in the image's own pixel space;
// without the image, over a blank page as large as the boxes reach.
func overlay(id string, lines []ocrLine, w, h int, withImage bool) template.HTML {
	if !withImage {
		for _, l := range lines {
			for _, p := range l.Box {
				if len(p) == 2 {
					w, h = max(w, int(math.Ceil(p[0]))+10), max(h, int(math.Ceil(p[1]))+10)
				}
			}
		}
	}
	w, h = max(w, 1), max(h, 1)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="ocr" viewBox="0 0 %d %d" role="img" aria-label="detected text boxes">`, w, h)
	if withImage {
		fmt.Fprintf(&sb, `<image href="/ui/jobs/%s/input" x="0" y="0" width="%d" height="%d"/>`, template.HTMLEscapeString(id), w, h)
	} else {
		fmt.Fprintf(&sb, `<rect class="page" x="0" y="0" width="%d" height="%d"/>`, w, h)
	}
	for i, l := range lines {
		var pts []string
		for _, p := range l.Box {
			if len(p) == 2 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", p[0], p[1]))
			}
		}
		fmt.Fprintf(&sb, `<polygon class="box" data-line="%d" points="%s"><title>%s</title></polygon>`,
			i+1, strings.Join(pts, " "), template.HTMLEscapeString(l.Text))
	}
	sb.WriteString(`</svg>`)
	// Numbers, and text escaped above: safe to insert as it is.
	return template.HTML(sb.String())
}
