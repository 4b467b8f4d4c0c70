package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
)

func TestGuardAddresses(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3",
		"224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "198.18.0.1", "192.0.0.170",
		"::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd00:ec2::254", "ff02::1", "fec0::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:0.0.0.0",
		"::127.0.0.1",         // IPv4-compatible
		"64:ff9b::a9fe:a9fe",  // NAT64 of 169.254.169.254
		"64:ff9b::7f00:1",     // NAT64 of 127.0.0.1
		"2002:a00:1::1",       // 6to4 of 10.0.0.1
		"2002:7f00:1::",       // 6to4 of 127.0.0.1
		"2001:0:4136:e378::1", // Teredo
		"64:ff9b:1::1",        // local-use NAT64
		"2001:db8::1", "100::1",
	}
	allowed := []string{
		"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1", "172.15.255.255",
		"169.255.0.1", "192.169.0.1", "11.0.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	}
	var g Guard
	for _, s := range refused {
		if err := g.CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrForbidden) {
			t.Errorf("CheckAddr(%s) = %v, want ErrForbidden", s, err)
		}
	}
	for _, s := range allowed {
		if err := g.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed", s, err)
		}
	}
	if err := g.CheckAddr(netip.Addr{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("CheckAddr(zero) = %v", err)
	}
}

func TestGuardAllowNets(t *testing.T) {
	allow, err := ParseAllowNets(" 127.0.0.0/8, ::1/128,,10.9.0.1, fd00::/8 ")
	if err != nil {
		t.Fatal(err)
	}
	if len(allow) != 4 {
		t.Fatalf("ParseAllowNets: %v", allow)
	}
	g := Guard{Allow: allow}
	for _, s := range []string{"127.0.0.1", "127.3.4.5", "::ffff:127.0.0.1", "::1", "10.9.0.1", "fd12::1"} {
		if err := g.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) with allow = %v", s, err)
		}
	}
	for _, s := range []string{"10.9.0.2", "169.254.169.254", "192.168.0.1", "fe80::1"} {
		if err := g.CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrForbidden) {
			t.Errorf("CheckAddr(%s) with allow = %v, want ErrForbidden", s, err)
		}
	}
	for _, bad := range []string{"127.0.0.0/33", "localhost", "10.0.0.0/8;rm"} {
		if _, err := ParseAllowNets(bad); err == nil {
			t.Errorf("ParseAllowNets(%q) accepted", bad)
		}
	}
	if got, err := ParseAllowNets(""); err != nil || got != nil {
		t.Errorf("ParseAllowNets(\"\") = %v, %v", got, err)
	}
}

func TestGuardCheckURL(t *testing.T) {
	ctx := context.Background()
	var g Guard
	invalid := []string{"ftp://example.com/x", "http://", "javascript:alert(1)", "mailto:a@b", "//example.com/x",
		"http://8.8.8.8:99999/", "http://8.8.8.8:0/", "http://%zz/", "example.com/hook"}
	for _, u := range invalid {
		if err := g.CheckURL(ctx, u); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("CheckURL(%q) = %v, want ErrInvalidURL", u, err)
		}
	}
	forbidden := []string{"http://localhost:8080/x", "http://127.0.0.1/", "http://[::1]:9/", "https://[::ffff:127.0.0.1]/",
		"http://169.254.169.254/latest/meta-data/", "http://[fe80::1%25eth0]/", "HTTP://10.0.0.1/", "http://0.0.0.0/"}
	for _, u := range forbidden {
		if err := g.CheckURL(ctx, u); !errors.Is(err, ErrForbidden) {
			t.Errorf("CheckURL(%q) = %v, want ErrForbidden", u, err)
		}
	}
	for _, u := range []string{"http://8.8.8.8/hook", "https://[2606:4700:4700::1111]:8443/h?x=1"} {
		if err := g.CheckURL(ctx, u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", u, err)
		}
	}
}

// TestGuardDialTimeCheck shows the check that protects delivery runs on
// the address being connected to: the name passed CheckURL (a public
// address), then "DNS" answers 127.0.0.1 at dial time, as in a rebinding
// attack, and the connection is refused before it is made.
func TestGuardDialTimeCheck(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	var g Guard
	if err := g.CheckURL(context.Background(), "http://93.184.215.14:"+port+"/"); err != nil {
		t.Fatalf("submit-time check of a public address: %v", err)
	}
	rebinding := func(g *Guard) *http.Client {
		c := g.Client(DefaultTimeout)
		c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return g.Dialer().DialContext(ctx, network, "127.0.0.1:"+port)
		}
		return c
	}
	_, err := rebinding(&g).Get("http://rebind.example:" + port + "/")
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("Get through a rebound name = %v, want ErrForbidden", err)
	}
	// The plain client refuses loopback by name and by literal too.
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		if _, err := g.Client(DefaultTimeout).Get(u); !errors.Is(err, ErrForbidden) {
			t.Fatalf("Get(%s) = %v, want ErrForbidden", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("server was reached %d times", hits.Load())
	}

	allowed := loopbackGuard(t)
	resp, err := rebinding(&allowed).Get("http://rebind.example:" + port + "/")
	if err != nil {
		t.Fatalf("with loopback allowed: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("server hits %d, want 1", hits.Load())
	}
}

func TestGuardControlRejectsUnparsable(t *testing.T) {
	var g Guard
	if err := g.control("unix", "/tmp/sock", nil); !errors.Is(err, ErrForbidden) {
		t.Fatalf("control(unix) = %v", err)
	}
}
