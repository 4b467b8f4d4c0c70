package api

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/inferq/inferq/internal/tenants"
)

// rateLimits holds one token bucket per tenant with a rate_per_sec. The
// buckets are this process's: with N producers behind a balancer a tenant
// gets up to N times its rate (docs/api.md says so).
type rateLimits struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newRateLimits() *rateLimits { return &rateLimits{m: map[string]*rate.Limiter{}} }

// allow takes one token of t's bucket, or says how long until one is due.
func (l *rateLimits) allow(t *tenants.Tenant, now time.Time) (bool, time.Duration) {
	if t.RatePerSec <= 0 {
		return true, 0
	}
	burst := max(1, int(math.Ceil(t.RatePerSec)))
	l.mu.Lock()
	lim := l.m[t.Name]
	if lim == nil || lim.Limit() != rate.Limit(t.RatePerSec) || lim.Burst() != burst {
		lim = rate.NewLimiter(rate.Limit(t.RatePerSec), burst)
		l.m[t.Name] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limited refuses a tenant's request past its rate_per_sec with 429
// rate_limited and a Retry-After of when its next token is due.
func (s *Server) limited(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
		if ok, wait := s.limits.allow(t, time.Now()); !ok {
			e := errf(http.StatusTooManyRequests, "rate_limited",
				fmt.Sprintf("tenant %s is limited to %g submit requests per second", t.Name, t.RatePerSec))
			e.RetryAfter = wait
			return e
		}
		return h(w, r, t)
	}
}
