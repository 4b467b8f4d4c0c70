package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/inferq/inferq/client"
)

// printDocument prints a finished document job's text (its pages, form
// feeds between them) on stdout, for piping, and its summary on stderr.
// It reports false for a job that is not a document, printing nothing.
func (c *cli) printDocument(ctx context.Context, cl *client.Client, j *client.Job) (bool, error) {
	if c.asJSON || j.Status != "succeeded" {
		return false, nil
	}
	res, err := cl.Result(ctx, j)
	if err != nil {
		return false, err
	}
	var doc struct {
		Pages       *int   `json:"pages"`
		Text        string `json:"text"`
		PageResults []struct {
			Source string `json:"source"`
		} `json:"page_results"`
	}
	if json.Unmarshal(res, &doc) != nil || doc.Pages == nil {
		return false, nil
	}
	bySource := map[string]int{}
	for _, p := range doc.PageResults {
		bySource[p.Source]++
	}
	fmt.Fprintf(c.err, "%s  %s  %d pages (%d from the text layer, %d through OCR)\n",
		j.ID, j.Status, *doc.Pages, bySource["text"], bySource["ocr"])
	fmt.Fprintln(c.out, doc.Text)
	return true, nil
}

// waitPages waits for one job, drawing a bar of its pages once it shows
// document progress: long-polls of a second, so the bar moves while the
// server still wakes the wait at once when the job ends.
func (c *cli) waitPages(ctx context.Context, cl *client.Client, id string) (*client.Job, error) {
	var bar *progressbar.ProgressBar
	for {
		j, err := cl.Get(ctx, id, time.Second)
		if err != nil {
			return nil, err
		}
		if p := j.Progress; p != nil && p.Pages > 0 {
			if bar == nil {
				bar = newBar(c.err, int64(p.Pages), "pages", false)
			}
			_ = bar.Set(p.PagesDone)
		}
		if j.Terminal() {
			if bar != nil {
				_ = bar.Finish()
			}
			return j, nil
		}
	}
}
