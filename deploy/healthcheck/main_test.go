package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestLocalURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/healthz",
		"0.0.0.0:9090":   "http://127.0.0.1:9090/healthz",
		"127.0.0.1:7000": "http://127.0.0.1:7000/healthz",
		"":               "http://127.0.0.1:8080/healthz",
		"[::]:8081":      "http://127.0.0.1:8081/healthz",
	} {
		if got := localURL(addr, "/healthz"); got != want {
			t.Errorf("localURL(%q) = %s, want %s", addr, got, want)
		}
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := probe(srv.URL+"/healthz", time.Second); err != nil {
		t.Errorf("a 200 must pass: %v", err)
	}
	if err := probe(srv.URL+"/readyz", time.Second); err == nil {
		t.Error("a 503 must fail")
	}
	srv.Close()
	if err := probe(srv.URL+"/healthz", time.Second); err == nil {
		t.Error("a closed port must fail")
	}
}
