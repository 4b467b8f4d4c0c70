// Package ops is what every inferq process shows its operator: structured
// logs, and /healthz, /readyz and /metrics on one HTTP listener (the
// producer mounts its API on the same listener).
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Logger builds the process's logger: JSON unless format is "text" or,
// with no format given, stderr is a terminal.
func Logger(format, level, process string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "" {
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(os.Stderr, opts)
	} else {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("process", process)
}

// Check is one readiness condition; a nil error is ready.
type Check func(ctx context.Context) error

// Server serves the operations endpoints and, optionally, an API.
type Server struct {
	Registry *prometheus.Registry
	mu       sync.Mutex
	checks   map[string]Check
	notes    map[string]string
	mux      *http.ServeMux
}

// NewServer returns a server with a fresh metrics registry holding the Go
// and process collectors.
func NewServer() *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{Registry: reg, checks: map[string]Check{}, notes: map[string]string{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if os.Getenv("INFERQ_PPROF") == "1" {
		// Profiling on demand, off by default: it exposes internals.
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	return s
}

// Mux is where the process adds its own routes.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// AddCheck adds a readiness condition.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// SetNote records (or, with "", clears) a condition the process itself
// found, such as a fault it is backing off from; a note makes /readyz fail
// and says why.
func (s *Server) SetNote(name, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if why == "" {
		delete(s.notes, name)
	} else {
		s.notes[name] = why
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	failed := map[string]string{}
	for k, v := range s.notes {
		failed[k] = v
	}
	s.mu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c(ctx); err != nil {
				mu.Lock()
				failed[name] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	body := map[string]any{"status": "ready", "checks": names}
	code := http.StatusOK
	if len(failed) > 0 {
		body["status"], body["failed"] = "not_ready", failed
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// Listen binds addr. When fallback is set and addr is taken, it tries the
// next ports above it, so that a scheduler and workers sharing one
// INFERQ_HTTP_ADDR on one machine still start (the producer binds exactly).
func Listen(addr string, fallback int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil || fallback == 0 || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	host, port, perr := net.SplitHostPort(addr)
	p, aerr := strconv.Atoi(port)
	if perr != nil || aerr != nil || p == 0 {
		return nil, err
	}
	for i := 1; i <= fallback; i++ {
		if ln, err2 := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p+i))); err2 == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("%w (and the %d ports above it)", err, fallback)
}

// Timeouts bound how long a client may hold a connection of an inferq
// listener without making progress. docs/operations.md ("HTTP timeouts")
// gives the reasoning.
type Timeouts struct {
	// Header bounds reading a request's headers.
	Header time.Duration
	// BodyStall bounds the wait for the first byte of a request's body and
	// then for each further piece of it: a body is cut when nothing of it
	// arrives for this long, never for taking long as a whole, so a 2 GiB
	// upload on a slow link goes through while a stalled one is dropped.
	BodyStall time.Duration
	// Idle bounds a kept-alive connection waiting for its next request.
	Idle time.Duration
}

// DefaultTimeouts are the timeouts of every inferq listener.
var DefaultTimeouts = Timeouts{Header: 10 * time.Second, BodyStall: time.Minute, Idle: 2 * time.Minute}

// NewHTTPServer returns a server for h with the timeouts t.
//
// http.Server's ReadTimeout alone would not do: it is one deadline for
// the whole request, body included, so any value either cuts long
// uploads or lets a stalled one hold its connection as long. So
// ReadTimeout is only the wait for a body's first byte, and each read of
// the body moves the deadline BodyStall ahead. (Once a body is done, or
// when there is none, net/http reads the connection under no deadline,
// so long-polls and event streams are not cut.) A handler that sets its
// own read deadline (http.ResponseController) keeps it: the body no
// longer moves it.
//
// There is no WriteTimeout, for the same reason in the other direction:
// one deadline for the whole response would cut event streams and large
// result downloads. A client that stops reading its response is left to
// the handler (a write deadline per write, through
// http.ResponseController).
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Handler:           readDeadlines(h, t.BodyStall),
		ReadHeaderTimeout: t.Header,
		ReadTimeout:       t.BodyStall,
		IdleTimeout:       t.Idle,
	}
}

// readDeadlines moves each request's read deadline as its body arrives
// (see NewHTTPServer).
func readDeadlines(h http.Handler, stall time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
		r.Body = &stallBody{ReadCloser: r.Body, w: dw, stall: stall}
		h.ServeHTTP(dw, r)
	})
}

// deadlineWriter notices a handler setting its own read deadline.
type deadlineWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	owned atomic.Bool
}

// SetReadDeadline is what http.ResponseController calls: from then on
// the handler's deadline holds.
func (w *deadlineWriter) SetReadDeadline(t time.Time) error {
	w.owned.Store(true)
	return w.rc.SetReadDeadline(t)
}

// Flush keeps the writer a http.Flusher for handlers that assert it.
func (w *deadlineWriter) Flush() { _ = w.rc.Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// stallBody gives each read of a request body stall to return.
type stallBody struct {
	io.ReadCloser
	w     *deadlineWriter
	stall time.Duration
	// ended: the body returned EOF or failed. Past EOF net/http reads the
	// connection in the background, and a deadline set then would end
	// the request's context when it passed; so no more deadlines.
	ended bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	if !b.ended && !b.w.owned.Load() {
		_ = b.w.rc.SetReadDeadline(time.Now().Add(b.stall))
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.ended = true
	}
	return n, err
}

// Serve runs an HTTP server with DefaultTimeouts on ln until ctx ends,
// then shuts it down, giving open requests grace to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := NewHTTPServer(h, DefaultTimeouts)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}
