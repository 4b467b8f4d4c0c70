package ops

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testTimeouts are short so the test runs in seconds; the cases below
// take several BodyStall periods, and the bounds they wait within are
// generous (they stop a broken test, they measure nothing).
var testTimeouts = Timeouts{Header: time.Second, BodyStall: time.Second, Idle: time.Second}

// outcome is what a handler saw.
type outcome struct {
	n   int64
	err error
	// canceled: the request's context ended while the handler waited.
	canceled bool
}

// startServer serves h through NewHTTPServer on a real loopback listener.
func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h, testTimeouts)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads c until the server closes it, and fails the test if
// that does not happen within bound.
func waitClosed(t *testing.T, c net.Conn, bound time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(bound))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s (read so far: %q)", bound, b)
	}
	return string(b)
}

func result(t *testing.T, ch <-chan outcome, bound time.Duration) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(bound):
		t.Fatalf("the handler was still reading after %s", bound)
		return outcome{}
	}
}

// TestServerTimeouts: the listener every inferq process serves on, over
// real TCP connections.
func TestServerTimeouts(t *testing.T) {
	upload := func(ch chan<- outcome) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			ch <- outcome{n: n, err: err}
			if err != nil {
				http.Error(w, "body", http.StatusRequestTimeout)
				return
			}
			fmt.Fprintf(w, "%d", n)
		}
	}
	stalled, steady := make(chan outcome, 1), make(chan outcome, 1)
	// wait holds a request for twice the read timeout, as a long-poll, an
	// event stream or a slow publish after the upload does.
	wait := func(ch chan<- outcome) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			_, _ = r.Body.Read(make([]byte, 1)) // past EOF, as decoders do
			select {
			case <-time.After(2 * testTimeouts.BodyStall):
				ch <- outcome{n: n}
				fmt.Fprint(w, "done")
			case <-r.Context().Done():
				ch <- outcome{n: n, canceled: true}
			}
		}
	}
	polls, posts := make(chan outcome, 1), make(chan outcome, 1)
	owned := make(chan outcome, 1)
	ownDeadline := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Like the API's refusal: drain what is left of a body, for a
		// bounded time only, however steadily it trickles in.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(testTimeouts.BodyStall / 2))
		n, err := io.Copy(io.Discard, r.Body)
		owned <- outcome{n: n, err: err}
	})
	mux := http.NewServeMux()
	mux.Handle("POST /stalled", upload(stalled))
	mux.Handle("POST /steady", upload(steady))
	mux.Handle("GET /poll", wait(polls))
	mux.Handle("POST /process", wait(posts))
	mux.Handle("POST /owned", ownDeadline)
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "pong") })
	addr := startServer(t, mux)
	bound := 10 * testTimeouts.BodyStall

	t.Run("stalled body is cut", func(t *testing.T) {
		c := dial(t, addr)
		fmt.Fprintf(c, "POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("a", 10))
		o := result(t, stalled, bound)
		var ne net.Error
		if !errors.As(o.err, &ne) || !ne.Timeout() || o.n != 10 {
			t.Fatalf("handler read %d bytes, %v; want 10 and a timeout", o.n, o.err)
		}
		waitClosed(t, c, bound)
	})

	t.Run("slow steady body goes through", func(t *testing.T) {
		// Three times the stall timeout in all, a piece every fifth of
		// it: one deadline for the whole request would cut it.
		const pieces = 15
		c := dial(t, addr)
		fmt.Fprintf(c, "POST /steady HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", pieces*100)
		for range pieces {
			time.Sleep(testTimeouts.BodyStall / 5)
			if _, err := c.Write([]byte(strings.Repeat("b", 100))); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		o := result(t, steady, bound)
		if o.err != nil || o.n != pieces*100 {
			t.Fatalf("handler read %d bytes, %v; want %d", o.n, o.err, pieces*100)
		}
		_ = c.SetReadDeadline(time.Now().Add(bound))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("response %v, %v", resp, err)
		}
	})

	t.Run("long requests outlive the read timeout", func(t *testing.T) {
		for _, c := range []struct {
			name string
			ch   chan outcome
			do   func() (*http.Response, error)
		}{
			{"long poll", polls, func() (*http.Response, error) { return http.Get("http://" + addr + "/poll") }},
			{"slow work after an upload", posts, func() (*http.Response, error) {
				return http.Post("http://"+addr+"/process", "text/plain", strings.NewReader("upload"))
			}},
		} {
			resp, err := c.do()
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if o := result(t, c.ch, bound); o.canceled || string(body) != "done" {
				t.Fatalf("%s: canceled %v, body %q", c.name, o.canceled, body)
			}
		}
	})

	t.Run("a handler's own read deadline holds", func(t *testing.T) {
		c := dial(t, addr)
		fmt.Fprintf(c, "POST /owned HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		done := make(chan struct{})
		defer close(done)
		go func() {
			for range 100 {
				select {
				case <-done:
					return
				case <-time.After(testTimeouts.BodyStall / 10):
				}
				if _, err := c.Write([]byte("c")); err != nil {
					return
				}
			}
		}()
		o := result(t, owned, bound)
		var ne net.Error
		if !errors.As(o.err, &ne) || !ne.Timeout() {
			t.Fatalf("handler read %d bytes, %v; want its own deadline to end the read", o.n, o.err)
		}
	})

	t.Run("idle connection is closed", func(t *testing.T) {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
		if got := waitClosed(t, c, bound); !strings.Contains(got, "pong") {
			t.Fatalf("read %q, want the answer, then the close", got)
		}
	})

	t.Run("slow headers are cut", func(t *testing.T) {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /ping HTTP/1.1\r\nHost: x\r\n")
		waitClosed(t, c, bound)
	})
}
