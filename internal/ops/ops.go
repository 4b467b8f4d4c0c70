// Package ops is what every inferq process shows its operator: structured
// logs, and /healthz, /readyz and /metrics on one HTTP listener (the
// producer mounts its API on the same listener).
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strconv"
	"sync"
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

// Serve runs an HTTP server on ln until ctx ends, then shuts it down,
// giving open requests grace to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
