package console

import (
	"fmt"
	"html/template"
	"strings"
	"sync"
	"time"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
)

// history is a ring of samples of the fleet's deadline record (the
// per-shard SLA counts, summed) and queue depths, from which the fleet
// page computes jobs/s and attainment over the last 5 minutes and hour,
// and draws them over time. It holds about span of samples; nothing of it
// is stored, so a restarted producer starts it afresh.
type history struct {
	mu      sync.Mutex
	span    time.Duration
	samples []sample
}

type mt struct{ Model, Tier string }

type sample struct {
	at       time.Time
	finished map[mt]int64
	met      map[mt]int64
	queued   map[mt]int
}

func newHistory(span time.Duration) *history { return &history{span: span} }

func (h *history) add(now time.Time, counts []jobs.SLACount, queues []coord.QueueStats) {
	s := sample{at: now, finished: map[mt]int64{}, met: map[mt]int64{}, queued: map[mt]int{}}
	for _, c := range counts {
		s.finished[mt{c.Model, c.Tier}] = c.Finished
		s.met[mt{c.Model, c.Tier}] = c.Met
	}
	for _, q := range queues {
		s.queued[mt{q.Model, q.Tier}] = q.Queued
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	cut := 0
	for cut < len(h.samples)-1 && now.Sub(h.samples[cut].at) > h.span {
		cut++
	}
	h.samples = append(h.samples[:0], h.samples[cut:]...)
}

// window is the change of one model and tier over the last d.
type window struct {
	Finished, Met int64
	Took          time.Duration
}

// Attainment is met over finished, and whether any job finished.
func (w window) Attainment() (float64, bool) {
	if w.Finished <= 0 {
		return 0, false
	}
	return float64(w.Met) / float64(w.Finished), true
}

// Rate is jobs finished per second.
func (w window) Rate() float64 {
	if w.Took <= 0 {
		return 0
	}
	return float64(w.Finished) / w.Took.Seconds()
}

// over is the change of k between the oldest sample within d of the
// newest and the newest.
func (h *history) over(k mt, d time.Duration) window {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.samples)
	if n < 2 {
		return window{}
	}
	last := h.samples[n-1]
	first := last
	for i := n - 2; i >= 0 && last.at.Sub(h.samples[i].at) <= d; i-- {
		first = h.samples[i]
	}
	return window{Finished: last.finished[k] - first.finished[k], Met: last.met[k] - first.met[k], Took: last.at.Sub(first.at)}
}

// keys lists every model and tier the history has seen.
func (h *history) keys() map[mt]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[mt]bool{}
	for _, s := range h.samples {
		for k := range s.finished {
			out[k] = true
		}
		for k, n := range s.queued {
			if n > 0 {
				out[k] = true
			}
		}
	}
	return out
}

// Plot geometry: a small chart per model and tier, the last hour.
const (
	plotW, plotH = 240, 48
	plotSpan     = time.Hour
	plotBuckets  = 60
)

// plot draws, for k over the last hour in one-minute buckets, the
// attainment of the jobs that finished in each bucket (a line, 0..100 %)
// and the queue depth (bars, scaled to the hour's deepest), as inline
// SVG: no script, no chart library.
func (h *history) plot(k mt, now time.Time) template.HTML {
	h.mu.Lock()
	var fin, met [plotBuckets]int64
	var depth [plotBuckets]int
	start := now.Add(-plotSpan)
	for i := 1; i < len(h.samples); i++ {
		a, b := h.samples[i-1], h.samples[i]
		if b.at.Before(start) {
			continue
		}
		bk := min(int(b.at.Sub(start)*plotBuckets/plotSpan), plotBuckets-1)
		fin[bk] += b.finished[k] - a.finished[k]
		met[bk] += b.met[k] - a.met[k]
		depth[bk] = max(depth[bk], b.queued[k])
	}
	h.mu.Unlock()
	deepest := 1
	for _, d := range depth {
		deepest = max(deepest, d)
	}
	bw := float64(plotW) / plotBuckets
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="attainment and queue depth, last hour">`, plotW, plotH, plotW, plotH)
	fmt.Fprintf(&sb, `<rect class="frame" x="0" y="0" width="%d" height="%d"/>`, plotW, plotH)
	for i, d := range depth {
		if d > 0 {
			hgt := float64(d) / float64(deepest) * (plotH - 2)
			fmt.Fprintf(&sb, `<rect class="depth" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, float64(i)*bw, plotH-hgt, bw, hgt)
		}
	}
	var pts []string
	for i := range fin {
		if fin[i] > 0 {
			y := (1 - float64(met[i])/float64(fin[i])) * (plotH - 4)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(i)*bw+bw/2, y+2))
		}
	}
	if len(pts) > 1 {
		fmt.Fprintf(&sb, `<polyline class="attain" points="%s"/>`, strings.Join(pts, " "))
	}
	for _, p := range pts { // a minute alone shows as a dot
		x, y, _ := strings.Cut(p, ",")
		fmt.Fprintf(&sb, `<circle class="attain-dot" cx="%s" cy="%s" r="2"/>`, x, y)
	}
	sb.WriteString(`</svg>`)
	// Built from numbers only: nothing a tenant wrote reaches it.
	return template.HTML(sb.String())
}
