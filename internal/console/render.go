package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"pct": formatPct,
	"dur": func(d time.Duration) string {
		if d <= 0 {
			return "—"
		}
		return d.String()
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return fmtWhen(t)
	},
	"rate": func(r float64) string { return fmt.Sprintf("%.1f", r) },
	"add":  func(a, b int) int { return a + b },
	"pctOf": func(n, of int64) string {
		if of <= 0 {
			return "0 %"
		}
		return fmt.Sprintf("%d %%", n*100/of)
	},
}

func formatPct(f float64) string { return fmt.Sprintf("%.1f %%", f*100) }

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, wrap(err, "layout")
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, wrap(err, "page "+name)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page with data (a map; the session is added as S).
func (c *Console) render(w http.ResponseWriter, status int, page string, s *session, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["S"] = s
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers with an error page (or plain text without a session).
func (c *Console) fail(w http.ResponseWriter, _ *http.Request, s *session, status int, msg string) {
	c.render(w, status, "error", s, map[string]any{"Status": status, "Message": msg})
}

// fragment is a part of a page the live stream replaces: the element
// with id ID gets HTML as its content.
type fragment struct {
	ID   string `json:"id"`
	HTML string `json:"html"`
}

// fragments renders the named templates of page with data.
func (c *Console) fragments(page string, data map[string]any, names ...string) ([]fragment, error) {
	out := make([]fragment, 0, len(names))
	for _, n := range names {
		var buf bytes.Buffer
		if err := c.pages[page].ExecuteTemplate(&buf, n, data); err != nil {
			return nil, err
		}
		out = append(out, fragment{ID: n, HTML: buf.String()})
	}
	return out, nil
}

// live streams a page's fragments as Server-Sent Events: re-rendered
// every LiveEvery, sent when they changed. The page's script puts each
// into its element; EventSource reconnects by itself.
func (c *Console) live(w http.ResponseWriter, r *http.Request, render func(ctx context.Context) ([]fragment, error)) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	ctx := r.Context()
	t := time.NewTicker(c.cfg.LiveEvery)
	defer t.Stop()
	sent := map[string]string{}
	quiet := 0
	for {
		frags, err := render(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("console: live page", "path", r.URL.Path, "err", err)
		}
		wrote := false
		for _, f := range frags {
			if sent[f.ID] == f.HTML {
				continue
			}
			sent[f.ID] = f.HTML
			b, _ := json.Marshal(f)
			_, _ = fmt.Fprintf(w, "event: fragment\ndata: %s\n\n", b)
			wrote = true
		}
		if quiet++; !wrote && quiet >= 10 {
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
			wrote = true
		}
		if wrote {
			quiet = 0
			if err := rc.Flush(); err != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
