package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/tenants"
)

// Sessions live in Redis, server-side, so that signing out ends them
// everywhere and nothing in the cookie can be forged or replayed after
// it: the cookie holds a random 32-byte id, Redis the session under the
// id's SHA-256 (a reader of Redis finds no usable cookie), with a TTL.

const (
	sessionCookie = "inferq_session"
	loginCookie   = "inferq_login" // the sign-in form's CSRF token
)

// session is a signed-in operator, or a tenant.
type session struct {
	Operator bool
	Tenant   *tenants.Tenant // nil for an operator
	CSRF     string
}

// Who names the session's holder for the page header.
func (s *session) Who() string {
	if s.Operator {
		return "operator"
	}
	return s.Tenant.Name
}

func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return "console:session:" + hex.EncodeToString(h[:])
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

// session reads the request's session, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || len(ck.Value) != 64 {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	m, err := c.cfg.Store.Redis().HGetAll(ctx, sessionKey(ck.Value)).Result()
	if err != nil || m["csrf"] == "" {
		return nil
	}
	s := &session{Operator: m["role"] == "operator", CSRF: m["csrf"]}
	if !s.Operator {
		// A tenant dropped from the tenants file is signed out.
		if s.Tenant = c.cfg.Tenants.Tenant(m["tenant"]); s.Tenant == nil {
			return nil
		}
	}
	return s
}

// secureCookie: Secure when the console is served over TLS (directly, or
// behind a proxy that says so).
func secureCookie(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
}

// Who may use a page or an action.
type access int

const (
	anyone     access = iota // any signed-in session
	operator                 // operators only
	tenantOnly               // tenants only (it acts as the tenant)
)

func (c *Console) allowed(s *session, a access) bool {
	switch a {
	case operator:
		return s.Operator
	case tenantOnly:
		return !s.Operator
	}
	return true
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// page wraps a GET handler: a session is required (else to sign-in).
func (c *Console) page(a access, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !c.allowed(s, a) {
			c.fail(w, r, s, http.StatusForbidden, "This page is not for this sign-in.")
			return
		}
		h(w, r, s)
	}
}

// action wraps a POST handler: a session and its CSRF token are required.
// The token comes in the X-CSRF-Token header, the csrf query parameter
// (multipart forms: the body is the API's to read) or the csrf form
// field; the request must not come from another origin.
func (c *Console) action(a access, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if !sameOrigin(r) || !c.csrfOK(r, s.CSRF) {
			c.fail(w, r, s, http.StatusForbidden, "The form was refused: its CSRF token is missing or wrong. Reload the page and try again.")
			return
		}
		if !c.allowed(s, a) {
			c.fail(w, r, s, http.StatusForbidden, "This action is not for this sign-in.")
			return
		}
		h(w, r, s)
	}
}

func (c *Console) csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.URL.Query().Get("csrf")
	}
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin refuses a request whose Origin header names another origin
// (SameSite=Strict already keeps the cookie off cross-site requests).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomToken()
	setCookie(w, r, loginCookie, tok, 600)
	c.render(w, status, "login", nil, map[string]any{"LoginToken": tok, "Error": msg, "Next": safeNext(r.FormValue("next"))})
}

// safeNext keeps a post-sign-in destination only when it is a console
// page (no open redirect).
func safeNext(next string) string {
	if strings.HasPrefix(next, "/ui/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return ""
}

// login signs in with an operator key or a tenant's API key.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.renderLogin(w, r, http.StatusForbidden, "The sign-in form expired (or its CSRF token is missing); try again.")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	fields := map[string]any{"csrf": randomToken()}
	switch t := c.cfg.Tenants.Authenticate(key); {
	case c.cfg.AdminKeys.Has(key):
		fields["role"] = "operator"
	case t != nil:
		fields["role"], fields["tenant"] = "tenant", t.Name
	default:
		c.renderLogin(w, r, http.StatusUnauthorized, "Unknown key.")
		return
	}
	id := randomToken()
	ctx := r.Context()
	rdb := c.cfg.Store.Redis()
	if err := rdb.HSet(ctx, sessionKey(id), fields).Err(); err != nil {
		c.renderLogin(w, r, http.StatusServiceUnavailable, "Redis is not answering; try again.")
		return
	}
	rdb.Expire(ctx, sessionKey(id), c.cfg.SessionTTL)
	setCookie(w, r, sessionCookie, id, int(c.cfg.SessionTTL.Seconds()))
	setCookie(w, r, loginCookie, "", -1)
	next := safeNext(r.PostFormValue("next"))
	if next == "" {
		next = "/ui/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.cfg.Store.Redis().Del(r.Context(), sessionKey(ck.Value))
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}
