package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// apiError is an answer other than success: an HTTP status and one stable
// snake_case code (API.md).
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// The codes the API answers with; docs/api.md lists them.
var (
	errUnauthorized = errf(http.StatusUnauthorized, "unauthorized", "missing or unknown API key (Authorization: Bearer <key>)")
	errNotFound     = errf(http.StatusNotFound, "not_found", "no such job")
	errUnavailable  = errf(http.StatusServiceUnavailable, "unavailable", "a backing service is down; the job was not accepted, try again")
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

// writeRaw writes a JSON body already encoded.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}
