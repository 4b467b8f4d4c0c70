package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/tenants"
)

type noAPI struct{}

func (noAPI) ServeAs(w http.ResponseWriter, _ *http.Request, _ string, _ *tenants.Tenant) {
	w.WriteHeader(http.StatusTeapot)
}

// offline is a console whose Redis does not answer: enough for what needs
// no session.
func offline(t *testing.T) *Console {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	reg, err := tenants.Parse([]byte("tenants: [{name: acme, tier: premium}]"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Store: jobs.NewStore(rdb, time.Hour), KV: &coord.Buckets{}, Tenants: reg, API: noAPI{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignInPageHeaders(t *testing.T) {
	h := offline(t).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/login", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("login page: %d", rec.Code)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(rec.Body.String(), "<script>") || strings.Contains(rec.Body.String(), "style=") {
		t.Error("inline script or style on the page")
	}
	ck := rec.Result().Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Secure {
		t.Fatalf("login cookie over plain HTTP: %+v", ck)
	}
	req := httptest.NewRequest("GET", "/ui/login", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ck := rec.Result().Cookies(); len(ck) != 1 || !ck[0].Secure {
		t.Fatalf("login cookie over TLS is not Secure: %+v", ck)
	}
}

func TestSignInRefusedWithoutToken(t *testing.T) {
	h := offline(t).Handler()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"key": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("sign-in without its token: %d", rec.Code)
	}
}

func TestPagesNeedSession(t *testing.T) {
	h := offline(t).Handler()
	for _, p := range []string{"/ui/fleet", "/ui/batches", "/ui/jobs/01abc", "/ui/webhooks"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/ui/login") {
			t.Errorf("%s without a session: %d %s", p, rec.Code, rec.Header().Get("Location"))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/ui/batches/b_x/cancel", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("action without a session: %d", rec.Code)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/ui/batches": "/ui/batches", "//evil.example/ui/": "", "https://evil.example": "", "/v1/jobs": ""} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q", in, got)
		}
	}
}

func TestHistoryWindows(t *testing.T) {
	h := newHistory(time.Hour)
	t0 := time.Now()
	k := mt{"echo", "premium"}
	for i := 0; i <= 12; i++ {
		h.add(t0.Add(time.Duration(i)*30*time.Second), []jobs.SLACount{{Model: "echo", Tier: "premium", Finished: int64(10 * i), Met: int64(9 * i)}}, nil)
	}
	w := h.over(k, 5*time.Minute)
	if w.Finished != 100 || w.Met != 90 || w.Took != 5*time.Minute {
		t.Fatalf("5 min window: %+v", w)
	}
	if a, _ := w.Attainment(); a != 0.9 {
		t.Fatalf("attainment %v", a)
	}
	if !strings.Contains(string(h.plot(k, t0.Add(6*time.Minute))), "<polyline") {
		t.Fatal("no attainment line drawn")
	}
}
