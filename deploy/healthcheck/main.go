// Command healthcheck is the probe the container images run for their
// HEALTHCHECK: the images are distroless or slim and carry no curl or wget.
// It GETs one URL and exits 0 on a 2xx answer, 1 otherwise.
//
//	healthcheck                 # http://127.0.0.1:<port of INFERQ_HTTP_ADDR>/healthz
//	healthcheck -path /readyz   # another path on the same port
//	healthcheck -url http://127.0.0.1:8222/healthz   # any URL (NATS, MinIO)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to GET (default: http://127.0.0.1:<port of INFERQ_HTTP_ADDR><path>)")
	path := flag.String("path", "/healthz", "path on the process's own ops port, when -url is not set")
	timeout := flag.Duration("timeout", 3*time.Second, "give up after this long")
	flag.Parse()
	if *url == "" {
		*url = localURL(os.Getenv("INFERQ_HTTP_ADDR"), *path)
	}
	if err := probe(*url, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// localURL points at the port the process listens on; the host is always
// loopback, because INFERQ_HTTP_ADDR in a container is usually ":8080" or
// "0.0.0.0:8080".
func localURL(addr, path string) string {
	port := "8080"
	if _, p, err := net.SplitHostPort(addr); err == nil && p != "" && p != "0" {
		port = p
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + path
}

func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
