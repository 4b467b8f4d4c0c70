package api

import (
	"testing"
	"time"

	"github.com/inferq/inferq/internal/tenants"
)

func TestRateLimits(t *testing.T) {
	l := newRateLimits()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	limited := &tenants.Tenant{Name: "acme", RatePerSec: 2}
	for i := 0; i < 2; i++ {
		if ok, _ := l.allow(limited, now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow(limited, now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third request at once: ok %v, retry after %v; want refused, about 0.5s", ok, wait)
	}
	// A refused request takes no token: after the wait, one goes through.
	if ok, _ := l.allow(limited, now.Add(wait)); !ok {
		t.Fatalf("request after Retry-After %v refused", wait)
	}
	// Tenants are apart, and no rate means no limit.
	free := &tenants.Tenant{Name: "globex"}
	for i := 0; i < 1000; i++ {
		if ok, _ := l.allow(free, now); !ok {
			t.Fatal("a tenant without rate_per_sec was limited")
		}
	}
	// A fractional rate still lets one request through.
	slow := &tenants.Tenant{Name: "initech", RatePerSec: 0.1}
	if ok, _ := l.allow(slow, now); !ok {
		t.Fatal("first request at 0.1/s refused")
	}
	if ok, wait := l.allow(slow, now); ok || wait < 9*time.Second {
		t.Fatalf("second request at 0.1/s: ok %v, wait %v", ok, wait)
	}
}
