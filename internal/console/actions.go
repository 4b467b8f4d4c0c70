package console

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/inferq/inferq/internal/tenants"
)

// captured holds the answer of an API handler that the console runs on a
// page's behalf, to turn into a redirect or an error on the page. Unwrap
// reaches the real connection, for the API's read deadlines.
type captured struct {
	w      http.ResponseWriter
	header http.Header
	code   int
	body   bytes.Buffer
}

func capture(w http.ResponseWriter) *captured {
	return &captured{w: w, header: http.Header{}, code: http.StatusOK}
}

func (c *captured) Header() http.Header  { return c.header }
func (c *captured) WriteHeader(code int) { c.code = code }
func (c *captured) Write(b []byte) (int, error) {
	if c.body.Len() < 1<<20 {
		c.body.Write(b)
	}
	return len(b), nil
}

// Unwrap lets http.ResponseController reach the connection.
func (c *captured) Unwrap() http.ResponseWriter { return c.w }

// apiAnswer is what the console reads of an API answer: an id on
// success, the error's code and message otherwise.
type apiAnswer struct {
	ID    string `json:"id"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c *captured) answer() apiAnswer {
	var a apiAnswer
	_ = json.Unmarshal(c.body.Bytes(), &a)
	return a
}

// errText is an API error as one line for a page.
func (a apiAnswer) errText(code int) string {
	if a.Error == nil {
		return http.StatusText(code)
	}
	return a.Error.Message + " (" + a.Error.Code + ")"
}

// runAPI runs route for t and returns the captured answer.
func (c *Console) runAPI(w http.ResponseWriter, r *http.Request, route string, t *tenants.Tenant) *captured {
	cw := capture(w)
	c.cfg.API.ServeAs(cw, r, route, t)
	return cw
}

// actor is the tenant an action runs as: the session's, or for an
// operator the owner of what it acts on.
func (c *Console) actor(s *session, owner string) *tenants.Tenant {
	if s.Operator {
		return c.cfg.Tenants.Tenant(owner)
	}
	return s.Tenant
}
