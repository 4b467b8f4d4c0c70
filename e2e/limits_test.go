package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/fleettest"
)

// TestJSONSubmitsShareABudget: a JSON submit is held whole while it is
// decoded, so the bodies held at once are bounded: with the budget taken
// by large JSON submits still arriving, one more waits a moment and is
// answered 503 busy, instead of growing the producer without bound.
func TestJSONSubmitsShareABudget(t *testing.T) {
	f := startFleet(t, fleettest.Options{})
	addr := strings.TrimPrefix(f.URL, "http://")
	key := f.Tenants["acme"].Key
	// Each declares the largest JSON body a submit may have (32 MiB of
	// input in base64, and room): six take the whole 256 MiB budget.
	const length = 45 << 20
	open := func() (net.Conn, error) {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		head := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"model\": \"echo\", \"input\": {\"data\": \"",
			addr, key, length)
		_, err = conn.Write([]byte(head))
		return conn, err
	}
	for range 6 {
		conn, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	time.Sleep(500 * time.Millisecond) // all six are being read
	conn, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a JSON submit past the budget got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a JSON submit past the budget: %d (Retry-After %q), want 503 busy with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
