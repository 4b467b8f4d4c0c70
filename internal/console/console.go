// Package console is inferq's web console, served by the producer under
// /ui/: operators see the fleet (queues, deadline attainment over time,
// workers, the scheduler leader) and failed webhooks; tenants see their
// batches and jobs, upload a folder or an archive, and try a model on one
// file. Pages are rendered on the server with html/template and kept live
// by Server-Sent Events that carry re-rendered fragments; the one script
// and the one style sheet are embedded in the binary, so the console works
// offline and under a strict Content-Security-Policy (no inline script or
// style, nothing from another origin).
//
// The console reads what the JSON API and the metrics already keep (job
// and batch records, the scheduler's queue snapshot in NATS KV, worker
// heartbeats, the per-shard SLA counts) and never scans jobs; its actions
// (submit, cancel, results) are the API's own handlers, run for the
// session's tenant (api.Server.ServeAs).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/tenants"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// API runs the JSON API's handlers for a tenant the console has
// authenticated (*api.Server).
type API interface {
	ServeAs(w http.ResponseWriter, r *http.Request, route string, t *tenants.Tenant)
}

// Config is what the console needs.
type Config struct {
	Store *jobs.Store
	// Blob serves job inputs (the page image under an OCR result).
	Blob *blob.Store
	// KV holds worker heartbeats, the scheduler's queue snapshot and the
	// lease.
	KV      *coord.Buckets
	Tenants *tenants.Registry
	// AdminKeys are the operator keys (INFERQ_ADMIN_KEYS); none: nobody
	// signs in as operator.
	AdminKeys *tenants.KeySet
	API       API
	// ModelsDir is read for the model catalog.
	ModelsDir string
	Log       *slog.Logger
	// SampleEvery is how often the attainment history takes a sample
	// (default 5 s); LiveEvery how often a live page is re-rendered
	// (default 2 s); SessionTTL how long a sign-in lasts (default 12 h).
	SampleEvery, LiveEvery, SessionTTL time.Duration
}

// Console serves the web console.
type Console struct {
	cfg     Config
	log     *slog.Logger
	pages   map[string]*template.Template
	history *history
	inspect *asynq.Inspector
	mux     *http.ServeMux
}

// New builds the console; Run keeps its attainment history.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil || cfg.KV == nil || cfg.Tenants == nil || cfg.API == nil {
		return nil, errors.New("console: Store, KV, Tenants and API are required")
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 5 * time.Second
	}
	if cfg.LiveEvery <= 0 {
		cfg.LiveEvery = 2 * time.Second
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Log, pages: pages, history: newHistory(time.Hour + time.Minute),
		inspect: asynq.NewInspectorFromRedisClient(cfg.Store.Redis())}
	c.routes()
	return c, nil
}

// Run samples the fleet's deadline record every SampleEvery until ctx
// ends, for the attainment plots. The history lives in this process: a
// restarted producer starts its plots afresh.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.SampleEvery)
	defer t.Stop()
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Console) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	counts, err := c.cfg.Store.SLACounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("console: sample SLA counts", "err", err)
		}
		return
	}
	q, _, _ := coord.ReadQueues(ctx, c.cfg.KV.State)
	c.history.add(time.Now(), counts, q.Stats)
}

// Handler serves the console; mount it at /ui/.
func (c *Console) Handler() http.Handler { return secure(c.mux) }

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticFiles(static)))
	m.HandleFunc("GET /ui/{$}", c.home)
	m.HandleFunc("GET /ui/login", c.loginPage)
	m.HandleFunc("POST /ui/login", c.login)
	m.HandleFunc("POST /ui/logout", c.action(anyone, c.logout))
	m.HandleFunc("GET /ui/fleet", c.page(operator, c.fleetPage))
	m.HandleFunc("GET /ui/fleet/live", c.page(operator, c.fleetLive))
	m.HandleFunc("GET /ui/batches", c.page(anyone, c.batchesPage))
	m.HandleFunc("GET /ui/batches/live", c.page(anyone, c.batchesLive))
	m.HandleFunc("POST /ui/batches", c.action(tenantOnly, c.upload))
	m.HandleFunc("GET /ui/batches/{id}", c.page(anyone, c.batchPage))
	m.HandleFunc("GET /ui/batches/{id}/live", c.page(anyone, c.batchLive))
	m.HandleFunc("GET /ui/batches/{id}/results", c.page(anyone, c.batchResults))
	m.HandleFunc("POST /ui/batches/{id}/cancel", c.action(anyone, c.cancelBatch))
	m.HandleFunc("GET /ui/jobs", c.page(anyone, c.jobsPage))
	m.HandleFunc("GET /ui/jobs/{id}", c.page(anyone, c.jobPage))
	m.HandleFunc("GET /ui/jobs/{id}/live", c.page(anyone, c.jobLive))
	m.HandleFunc("GET /ui/jobs/{id}/input", c.page(anyone, c.jobInput))
	m.HandleFunc("GET /ui/jobs/{id}/output", c.page(anyone, c.jobOutput))
	m.HandleFunc("POST /ui/jobs/{id}/cancel", c.action(anyone, c.cancelJob))
	m.HandleFunc("GET /ui/webhooks", c.page(operator, c.webhooksPage))
	m.HandleFunc("POST /ui/webhooks/replay", c.action(operator, c.replay))
	m.HandleFunc("GET /ui/models", c.page(anyone, c.modelsPage))
	m.HandleFunc("POST /ui/models/try", c.action(tenantOnly, c.tryModel))
	c.mux = m
}

// secure sets the headers every console answer carries: a strict CSP
// (scripts, styles, images and connections from this origin only; no
// inline script or style; no framing; forms post here only), no MIME
// sniffing, no referrer to other sites (form actions carry the CSRF
// token in their query; "no-referrer" would make Chromium send
// "Origin: null" on the console's own form posts), and no caching of
// pages that show tenants' data.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if hd.Get("Cache-Control") == "" {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// staticFiles serves the embedded script and style sheet; they change
// only with the binary, so they may be cached for a while.
func staticFiles(fsys fs.FS) http.Handler {
	fh := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		fh.ServeHTTP(w, r)
	})
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	s := c.session(r)
	switch {
	case s == nil:
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	case s.Operator:
		http.Redirect(w, r, "/ui/fleet", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/ui/batches", http.StatusSeeOther)
	}
}

func wrap(err error, what string) error { return fmt.Errorf("console: %s: %w", what, err) }
