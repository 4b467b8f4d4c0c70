package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbidden is wrapped by every refusal of a destination address.
var ErrForbidden = errors.New("webhook: destination address not allowed")

// ErrInvalidURL is wrapped when a webhook URL is not an absolute http(s)
// URL or its host does not resolve.
var ErrInvalidURL = errors.New("webhook: invalid webhook URL")

// Guard refuses webhook destinations that would let a tenant reach the
// deployment's own network (SSRF): loopback, private, link-local (the cloud
// metadata address 169.254.169.254 among them), unspecified, multicast,
// CGNAT and the other special-purpose ranges, in IPv4, IPv6 and IPv4 forms
// embedded in IPv6, unless the address is inside one of Allow. The zero
// Guard allows no such address.
type Guard struct {
	// Allow lists networks reachable although they are special-purpose,
	// e.g. 127.0.0.0/8 in tests (INFERQ_WEBHOOK_ALLOW_NETS).
	Allow []netip.Prefix
	// Resolver resolves host names in CheckURL and when dialing; nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
}

// ParseAllowNets parses a comma-separated list of CIDR prefixes (bare
// addresses are taken as single-address prefixes), as given in
// INFERQ_WEBHOOK_ALLOW_NETS. Empty items are ignored.
func ParseAllowNets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("webhook: allow net %q: %w", item, err)
			}
			out = append(out, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("webhook: allow net %q: %w", item, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// CheckURL validates a webhook URL at submit: an absolute http or https
// URL whose host resolves, every resolved address allowed. The dial-time
// check of Client is what really protects delivery (DNS may answer
// differently later); this one gives the submitter an early, clear error.
func (g *Guard) CheckURL(ctx context.Context, rawURL string) error {
	u, err := parseURL(rawURL)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(a)
	}
	addrs, err := g.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: resolve %s: %w", ErrInvalidURL, host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %s has no addresses", ErrInvalidURL, host)
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

// parseURL checks the shape of a webhook URL without resolving it.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the URL whole.
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, redactError(err))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return nil, fmt.Errorf("%w: scheme %q, want http or https", ErrInvalidURL, u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: port %q", ErrInvalidURL, p)
		}
	}
	return u, nil
}

// CheckAddr reports, wrapping ErrForbidden, why a is refused, or nil.
func (g *Guard) CheckAddr(a netip.Addr) error {
	a = a.WithZone("")
	if !a.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbidden)
	}
	for _, p := range g.Allow {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return nil
		}
	}
	if reason := specialPurpose(a); reason != "" {
		return fmt.Errorf("%w: %s is %s", ErrForbidden, a, reason)
	}
	return nil
}

// Dialer returns a dialer whose Control refuses, after DNS resolution, any
// address CheckAddr refuses. Because the check runs on the address the
// socket is about to connect to, a name that resolved to a public address
// at submit and to a private one now (DNS rebinding) is still refused.
func (g *Guard) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  g.Resolver,
		Control:   g.control,
	}
}

func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %s address %q", ErrForbidden, network, address)
	}
	return g.CheckAddr(ap.Addr())
}

// Client returns an HTTP client for deliveries: dials through Dialer, uses
// no proxy (a proxy would be the address checked, not the destination),
// follows no redirects (a 3xx is a failed attempt, so a receiver cannot
// bounce a delivery to an internal address), and gives up after timeout.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.Dialer().DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (g *Guard) resolver() *net.Resolver {
	if g.Resolver != nil {
		return g.Resolver
	}
	return net.DefaultResolver
}

var (
	blocked4 = []struct {
		p      netip.Prefix
		reason string
	}{
		{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
		{netip.MustParsePrefix("10.0.0.0/8"), "private"},
		{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
		{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	}
	blocked6 = []struct {
		p      netip.Prefix
		reason string
	}{
		{netip.MustParsePrefix("::/96"), "unspecified, loopback or IPv4-compatible"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
		{netip.MustParsePrefix("100::/64"), "discard-only"},
		{netip.MustParsePrefix("2001::/32"), "Teredo"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
		{netip.MustParsePrefix("fc00::/7"), "unique local (private)"},
		{netip.MustParsePrefix("fe80::/10"), "link-local"},
		{netip.MustParsePrefix("fec0::/10"), "site-local"},
		{netip.MustParsePrefix("ff00::/8"), "multicast"},
	}
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// specialPurpose names the special-purpose range a falls in, "" when a is
// an ordinary global address. IPv4 carried inside IPv6 (mapped, NAT64,
// 6to4) is judged by the IPv4 address it carries.
func specialPurpose(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		for _, b := range blocked4 {
			if b.p.Contains(a) {
				return b.reason
			}
		}
		return ""
	}
	for _, b := range blocked6 {
		if b.p.Contains(a) {
			return b.reason
		}
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		if r := specialPurpose(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
			return r + " (via NAT64)"
		}
	case sixToFour.Contains(a):
		if r := specialPurpose(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
			return r + " (via 6to4)"
		}
	}
	return ""
}
