// Package api is the producer's public HTTP API (API.md): it authenticates
// tenants, streams uploads to S3, records jobs in Redis, makes them durable
// in JetStream before answering 202, and answers status, long-polls, event
// streams and cancels.
package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/intake"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/rollout"
	"github.com/inferq/inferq/internal/tenants"
	"github.com/inferq/inferq/internal/webhook"
)

// Config is what the API needs.
type Config struct {
	Store   *jobs.Store
	Blob    *blob.Store
	NATS    *nats.Conn
	JS      jetstream.JetStream
	Tenants *tenants.Registry
	// Estimates, when set, are the scheduler's expected waits by model and
	// tier, for the estimated completion a submit answers with.
	Estimates interface {
		Wait(model, tier string) (time.Duration, bool)
	}
	// ModelsDir is read for the catalog of models at start and on Refresh.
	ModelsDir string
	// Rollouts, when set, adds each model's rollout to GET /v1/models.
	Rollouts *rollout.Store
	// Intake reads inputs and makes jobs durable (one job and batches
	// alike).
	Intake *intake.Intake
	// MaxInputBytes bounds one input.
	MaxInputBytes int64
	// PublishWait bounds how long a submit waits for JetStream.
	PublishWait time.Duration
	// Notifier enqueues job.canceled and batch.completed webhooks; nil
	// sends none.
	Notifier *notify.Notifier
	// WebhookGuard checks webhook URLs at submit (SSRF); nil checks only
	// their shape.
	WebhookGuard *webhook.Guard
	// WebhookGone, when set, refuses at submit a webhook URL that answered
	// 410 Gone before.
	WebhookGone *webhook.GoneList
	// Documents, when set, checks documents at submit (checkDocument):
	// their page count against its limits, and encryption.
	Documents *documents.Opener
	// MaxBatchBytes bounds one POST /v1/batches body (default 2 GiB).
	MaxBatchBytes int64
	// MaxBatchFiles bounds the files of one batch (default 100,000).
	MaxBatchFiles int
	// UploadExpiry is how long a presigned upload URL stays valid
	// (default 1 h).
	UploadExpiry time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered
	// (default 24 h).
	IdempotencyTTL time.Duration
	Log            *slog.Logger
	Metrics        prometheus.Registerer
}

// Defaults of the Config fields left zero.
const (
	DefaultMaxBatchBytes  = 2 << 30
	DefaultMaxBatchFiles  = 100_000
	DefaultUploadExpiry   = time.Hour
	DefaultIdempotencyTTL = 24 * time.Hour
)

// Server serves the API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.RWMutex
	catalog map[string]*catalog.Manifest
	m       metrics
	limits  *rateLimits
	watch   *watcher
	// jsonBodies is the budget of JSON submit bodies held (readJSON).
	jsonBodies *semaphore.Weighted
	// docChecks bounds the documents opened at submit (checkDocument).
	docChecks chan struct{}
}

type metrics struct {
	requests  *prometheus.CounterVec
	submitted *prometheus.CounterVec
	submitDur prometheus.Histogram
}

// New builds the API server and reads the model catalog.
func New(cfg Config) (*Server, error) {
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxBatchFiles <= 0 {
		cfg.MaxBatchFiles = DefaultMaxBatchFiles
	}
	if cfg.UploadExpiry <= 0 {
		cfg.UploadExpiry = DefaultUploadExpiry
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if cfg.Intake == nil {
		return nil, errors.New("api: Config.Intake is required")
	}
	s := &Server{cfg: cfg, log: cfg.Log, limits: newRateLimits(), watch: newWatcher(cfg.NATS),
		jsonBodies: semaphore.NewWeighted(jsonBudget), docChecks: make(chan struct{}, docChecks)}
	if err := s.RefreshModels(); err != nil {
		return nil, err
	}
	s.m = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferq_api_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferq_jobs_submitted_total", Help: "Jobs accepted (202) by model and tier.",
		}, []string{"model", "tier"}),
		submitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "inferq_submit_seconds", Help: "Time to accept one job: upload, record, durable publish.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.m.requests, s.m.submitted, s.m.submitDur)
	}
	return s, nil
}

// RefreshModels rereads the model catalog (new models and versions).
func (s *Server) RefreshModels() error {
	cat, err := catalog.Catalog(s.cfg.ModelsDir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.catalog = cat
	s.mu.Unlock()
	return nil
}

func (s *Server) model(name string) *catalog.Manifest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.catalog[name]
}

// Routes mounts the API on mux.
func (s *Server) Routes(mux *http.ServeMux) {
	mux.Handle("POST /v1/jobs", s.handle("submit", s.limited(s.submit)))
	mux.Handle("GET /v1/jobs/{id}", s.handle("get_job", s.getJob))
	mux.Handle("GET /v1/jobs/{id}/output", s.handle("job_output", s.getOutput))
	mux.Handle("GET /v1/jobs/{id}/events", s.handle("job_events", s.events))
	mux.Handle("POST /v1/jobs/{id}/cancel", s.handle("cancel", s.cancel))
	mux.Handle("POST /v1/batches", s.handle("submit_batch", s.limited(s.submitBatch)))
	mux.Handle("GET /v1/batches/{id}", s.handle("get_batch", s.getBatch))
	mux.Handle("GET /v1/batches/{id}/results", s.handle("batch_results", s.batchResults))
	mux.Handle("POST /v1/batches/{id}/cancel", s.handle("cancel_batch", s.cancelBatch))
	mux.Handle("POST /v1/uploads", s.handle("upload", s.limited(s.createUpload)))
	mux.Handle("GET /v1/models", s.handle("models", s.listModels))
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error

// ServeAs runs the API route named route (as Routes names them:
// "submit", "submit_batch", "cancel", "cancel_batch", "batch_results",
// "job_output", ...) for tenant t, whom the caller has authenticated its
// own way: the web console, whose sessions stand for a tenant's key, so
// that its actions are the API's own, limits and all. r's path values
// ("id") must be set. An unknown route answers 404.
func (s *Server) ServeAs(w http.ResponseWriter, r *http.Request, route string, t *tenants.Tenant) {
	h := map[string]handlerFunc{
		"submit": s.limited(s.submit), "get_job": s.getJob, "job_output": s.getOutput,
		"cancel": s.cancel, "submit_batch": s.limited(s.submitBatch), "get_batch": s.getBatch,
		"batch_results": s.batchResults, "cancel_batch": s.cancelBatch,
	}[route]
	if h == nil {
		http.NotFound(w, r)
		return
	}
	s.serve(route, h, w, r, t)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// handle authenticates the request, runs h, and turns its error into the
// API's error body.
func (s *Server) handle(route string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		t := s.cfg.Tenants.Authenticate(strings.TrimSpace(key))
		if !ok {
			t = nil
		}
		s.serve(route, h, w, r, t)
	})
}

// serve runs h for tenant t (nil: unauthorized), counted under route, and
// turns its error into the API's error body.
func (s *Server) serve(route string, h handlerFunc, w http.ResponseWriter, r *http.Request, t *tenants.Tenant) {
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() { s.m.requests.WithLabelValues(route, http.StatusText(rec.code)).Inc() }()
	body := r.Body // as sent: handlers wrap r.Body in their limits
	if r.ContentLength == 0 {
		body = nil
	}
	if t == nil {
		refuse(rec, body, errUnauthorized)
		return
	}
	if err := h(rec, r, t); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			s.log.Error("request failed", "route", route, "tenant", t.Name, "err", err)
			ae = errUnavailable
		}
		refuse(rec, body, ae)
	}
}

// Bounds on what a refused request's body may still send after its answer.
const (
	drainBytes = 64 << 20
	drainTime  = 10 * time.Second
)

// refuse answers a request with e, then reads and discards what is left of
// its body, within bounds. A server that closes a connection with unread
// bytes in it makes the kernel send a reset, and a reset discards the
// answer the client had not read yet: without the drain, a client whose
// upload is refused part-way (a field or a file over its limit) sees
// "connection reset by peer" instead of its 4xx. Past the bounds the
// connection is closed anyway: a refused body is not read forever.
func refuse(w http.ResponseWriter, body io.Reader, e *apiError) {
	if body == nil {
		writeError(w, e)
		return
	}
	w.Header().Set("Connection", "close")
	writeError(w, e)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	_ = rc.SetReadDeadline(time.Now().Add(drainTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainBytes))
}

// loadOwned reads a job and hides it from any tenant but its own.
func (s *Server) loadOwned(ctx context.Context, id string, t *tenants.Tenant) (*jobs.Job, error) {
	if !validID(id) {
		return nil, errNotFound
	}
	j, err := s.cfg.Store.Get(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) || (err == nil && j.Tenant != t.Name) {
		return nil, errNotFound
	}
	return j, err
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// maxWait bounds ?wait= so that a request cannot pin a connection for long.
const maxWait = 5 * time.Minute

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	id := r.PathValue("id")
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errf(http.StatusBadRequest, "invalid_wait", "wait must be a duration such as 30s")
		}
		wait = min(d, maxWait)
	}
	if wait == 0 {
		j, err := s.loadOwned(r.Context(), id, t)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, j)
		return nil
	}
	// Watch before reading, so that a change between the read and the
	// watch is not missed; then wake on events, and re-read the record now
	// and then in case an event was lost (events are not stored).
	events, stop, err := s.watch.watch(t.Name, id)
	if err != nil {
		return err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	for {
		j, err := s.loadOwned(r.Context(), id, t)
		if err != nil {
			return err
		}
		if j.Status.Terminal() {
			writeJSON(w, http.StatusOK, j)
			return nil
		}
		if !waitEvent(ctx, events, true) {
			writeJSON(w, http.StatusOK, j)
			return nil
		}
	}
}

// recheck is how often a waiter re-reads the record without an event.
const recheck = 10 * time.Second

// waitEvent waits for the next event, or for recheck to pass, and reports
// whether either came before ctx ended. With terminalOnly, it skips events
// of non-terminal states.
func waitEvent(ctx context.Context, events <-chan queue.Event, terminalOnly bool) bool {
	t := time.NewTimer(recheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case ev := <-events:
			if !terminalOnly || ev.Status.Terminal() {
				return true
			}
		}
	}
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	j, err := s.loadOwned(r.Context(), r.PathValue("id"), t)
	if err != nil {
		return err
	}
	now := time.Now()
	_, err = s.cfg.Store.Transition(r.Context(), j.ID, j.Tenant, jobs.Canceled, jobs.Update{FinishedAt: now})
	var te *jobs.TransitionError
	if errors.As(err, &te) {
		return errf(http.StatusConflict, "already_finished", "the job is already "+string(te.From))
	}
	if err != nil {
		return err
	}
	queue.PublishEvent(s.cfg.NATS, j.Tenant, j.ID, jobs.Canceled, now)
	if s.cfg.Notifier != nil {
		// The cancel is durable; a lost webhook must not turn it into an
		// error, so a failure here is logged, not answered.
		if err := s.cfg.Notifier.Finished(context.WithoutCancel(r.Context()), j.ID, jobs.Canceled); err != nil {
			s.log.Error("cancel: webhook or batch not recorded", "job", j.ID, "tenant", j.Tenant, "err", err)
		}
	}
	j, err = s.loadOwned(r.Context(), j.ID, t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// modelInfo is one entry of GET /v1/models.
type modelInfo struct {
	Name         string           `json:"name"`
	Version      string           `json:"version"`
	Description  string           `json:"description,omitempty"`
	Inputs       []catalog.IOSpec `json:"inputs"`
	Outputs      []catalog.IOSpec `json:"outputs"`
	MaxBatch     int              `json:"max_batch"`
	ContentTypes []string         `json:"content_types,omitempty"`
	// Rollout is the model's latest rollout, running or ended.
	Rollout *rollout.State `json:"rollout,omitempty"`
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request, _ *tenants.Tenant) error {
	s.mu.RLock()
	out := make([]modelInfo, 0, len(s.catalog))
	for _, m := range s.catalog {
		out = append(out, modelInfo{m.Name, m.Version, m.Description, m.Inputs, m.Outputs, m.MaxBatch, m.ContentTypes, nil})
	}
	s.mu.RUnlock()
	sortModels(out)
	s.addRollouts(r.Context(), out)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func sortModels(ms []modelInfo) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Name < ms[j-1].Name; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// getOutput streams a result too large for the job record, which the
// worker stored in S3; the record's result says so ("output_url").
func (s *Server) getOutput(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	j, err := s.loadOwned(r.Context(), r.PathValue("id"), t)
	if err != nil {
		return err
	}
	body, size, err := s.cfg.Blob.Open(r.Context(), blob.ResultKey(j.Tenant, j.ID))
	if errors.Is(err, blob.ErrNotFound) {
		return errf(http.StatusNotFound, "no_stored_output", "this job's result is in the job itself (GET /v1/jobs/<id>)")
	}
	if err != nil {
		return err
	}
	defer body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	_, _ = io.Copy(w, body)
	return nil
}
