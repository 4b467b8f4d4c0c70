package fleettest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Received is one request a Receiver got.
type Received struct {
	Header http.Header
	Body   []byte
	At     time.Time
	// Status is what the receiver answered.
	Status int
}

// Receiver is a webhook endpoint for tests: a real HTTP server on
// 127.0.0.1 that records every request and answers what its Answer says.
// It verifies nothing itself; tests check signatures with the SDK, as a
// real receiver would.
type Receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []Received
	answer  func(n int, r *http.Request) int
	handler http.Handler
	changed chan struct{}
}

// NewReceiver starts a receiver. answer gets the request's number
// (counting from 1) and returns the status to answer; nil answers 204.
func NewReceiver(answer func(n int, r *http.Request) int) *Receiver {
	rv := &Receiver{answer: answer, changed: make(chan struct{})}
	rv.Server = httptest.NewServer(http.HandlerFunc(rv.serve))
	return rv
}

// NewHandlerReceiver starts a receiver that serves with h (the SDK's
// WebhookHandler, say) and records each request with h's answer.
func NewHandlerReceiver(h http.Handler) *Receiver {
	rv := &Receiver{handler: h, changed: make(chan struct{})}
	rv.Server = httptest.NewServer(http.HandlerFunc(rv.serve))
	return rv
}

func (rv *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rv.mu.Lock()
	n := len(rv.got) + 1
	answer, h := rv.answer, rv.handler
	rv.mu.Unlock()
	status := http.StatusNoContent
	switch {
	case h != nil:
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		status = sw.status
	case answer != nil:
		status = answer(n, r)
		w.WriteHeader(status)
	default:
		w.WriteHeader(status)
	}
	rv.record(Received{Header: r.Header.Clone(), Body: body, At: time.Now(), Status: status})
}

func (rv *Receiver) record(r Received) {
	rv.mu.Lock()
	rv.got = append(rv.got, r)
	close(rv.changed)
	rv.changed = make(chan struct{})
	rv.mu.Unlock()
}

// SetAnswer replaces the answer function.
func (rv *Receiver) SetAnswer(answer func(n int, r *http.Request) int) {
	rv.mu.Lock()
	rv.answer = answer
	rv.mu.Unlock()
}

// Requests returns what the receiver got so far.
func (rv *Receiver) Requests() []Received {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]Received(nil), rv.got...)
}

// WaitFor waits until ok holds for the requests received, or ctx ends.
func (rv *Receiver) WaitFor(ctx context.Context, ok func([]Received) bool) error {
	for {
		rv.mu.Lock()
		got := append([]Received(nil), rv.got...)
		ch := rv.changed
		rv.mu.Unlock()
		if ok(got) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("webhook receiver: %d requests, the awaited condition never held: %w", len(got), ctx.Err())
		}
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
