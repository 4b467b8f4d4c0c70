// Package client is the Go SDK for inferq's HTTP API (docs/api.md): submit
// one job or a batch of many (from a directory, a list of readers or an
// archive, streamed), upload large inputs straight to S3, wait for jobs
// and batches, stream a batch's results, cancel, list models, and verify
// the signed webhooks inferq sends (VerifyWebhook, WebhookHandler). The
// CLI and the tests use it; so can any Go program.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one inferq producer as one tenant.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
}

// New returns a client for baseURL (like http://127.0.0.1:8080) and key.
func New(baseURL, apiKey string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, HTTP: &http.Client{}}
}

// Error is an error answer of the API.
type Error struct {
	Status     int
	Code       string `json:"code"`
	Message    string `json:"message"`
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("inferq: %d %s: %s", e.Status, e.Code, e.Message)
}

// JobError is why a job failed.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Job is a job as the API shows it.
type Job struct {
	ID                  string          `json:"id"`
	Status              string          `json:"status"`
	Model               string          `json:"model"`
	ModelVersion        string          `json:"model_version"`
	Tier                string          `json:"tier"`
	CreatedAt           *time.Time      `json:"created_at"`
	StartedAt           *time.Time      `json:"started_at"`
	FinishedAt          *time.Time      `json:"finished_at"`
	Deadline            *time.Time      `json:"deadline"`
	EstimatedCompletion *time.Time      `json:"estimated_completion,omitempty"`
	MetDeadline         *bool           `json:"met_deadline"`
	Attempts            int             `json:"attempts"`
	Result              json.RawMessage `json:"result"`
	Error               *JobError       `json:"error"`
	Metadata            json.RawMessage `json:"metadata"`
	BatchID             string          `json:"batch_id"`
	FileName            string          `json:"file_name"`
	StatusURL           string          `json:"status_url,omitempty"`
	// Progress is a running document's pages read so far.
	Progress *Progress `json:"progress,omitempty"`
}

// Progress is how far a document job is.
type Progress struct {
	PagesDone int `json:"pages_done"`
	Pages     int `json:"pages"`
}

// Terminal reports whether the job has ended.
func (j *Job) Terminal() bool {
	switch j.Status {
	case "succeeded", "failed", "canceled", "expired":
		return true
	}
	return false
}

// Model is one entry of the model list.
type Model struct {
	Name     string            `json:"name"`
	Version  string            `json:"version"`
	Inputs   []json.RawMessage `json:"inputs"`
	Outputs  []json.RawMessage `json:"outputs"`
	MaxBatch int               `json:"max_batch"`
	// Rollout is the model's latest rollout of a new version, if any.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Rollout is a model's rollout of a new version (docs/models.md).
type Rollout struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Canary    float64   `json:"canary"`
	Shadow    float64   `json:"shadow"`
	Window    string    `json:"window"`
	StartedAt time.Time `json:"started_at"`
	// Status is running, promoted, rolled_back or aborted.
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	EndedAt time.Time `json:"ended_at,omitzero"`
	// Counts are per version: jobs, failed, met_deadline, run_us, shadow,
	// agree.
	Counts map[string]map[string]int64 `json:"counts,omitempty"`
}

// Submit is one job to submit.
type Submit struct {
	Model       string
	Input       io.Reader
	FileName    string
	ContentType string
	// DeadlineMS asks for a deadline later than the tier's, from now.
	DeadlineMS int64
	WebhookURL string
	Metadata   map[string]any
	// IdempotencyKey makes a retried submit return the first job.
	IdempotencyKey string
}

// Submit uploads one input as multipart/form-data, streaming it.
func (c *Client) Submit(ctx context.Context, s Submit) (*Job, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := writeForm(mw, s)
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := c.request(ctx, "POST", "/v1/jobs", pr)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if s.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", s.IdempotencyKey)
	}
	var j Job
	return &j, c.do(req, http.StatusAccepted, &j)
}

func writeForm(mw *multipart.Writer, s Submit) error {
	fields := map[string]string{"model": s.Model, "webhook_url": s.WebhookURL}
	if s.DeadlineMS > 0 {
		fields["deadline_ms"] = strconv.FormatInt(s.DeadlineMS, 10)
	}
	if s.Metadata != nil {
		b, err := json.Marshal(s.Metadata)
		if err != nil {
			return err
		}
		fields["metadata"] = string(b)
	}
	for k, v := range fields {
		if v != "" {
			if err := mw.WriteField(k, v); err != nil {
				return err
			}
		}
	}
	h := textproto.MIMEHeader{}
	name := s.FileName
	if name == "" {
		name = "input"
	}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	ct := s.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if s.Input == nil {
		return errors.New("no input")
	}
	_, err = io.Copy(w, s.Input)
	return err
}

// SubmitBytes submits a small input inline, as the JSON form of the API.
func (c *Client) SubmitBytes(ctx context.Context, model string, data []byte, contentType string) (*Job, error) {
	return c.SubmitJSON(ctx, JSONSubmit{Model: model, Data: data, ContentType: contentType})
}

// JSONSubmit is one job in the JSON form: its input inline (Data) or
// named by a presigned upload (UploadID).
type JSONSubmit struct {
	Model       string
	Data        []byte
	ContentType string
	UploadID    string
	DeadlineMS  int64
	WebhookURL  string
	Metadata    map[string]any
	// IdempotencyKey makes a retried submit return the first job.
	IdempotencyKey string
}

// SubmitJSON submits one job in the JSON form of the API.
func (c *Client) SubmitJSON(ctx context.Context, s JSONSubmit) (*Job, error) {
	input := map[string]string{}
	if s.UploadID != "" {
		input["upload_id"] = s.UploadID
	} else {
		input["data"] = base64.StdEncoding.EncodeToString(s.Data)
		input["content_type"] = s.ContentType
	}
	req := map[string]any{"model": s.Model, "input": input}
	if s.DeadlineMS > 0 {
		req["deadline_ms"] = s.DeadlineMS
	}
	if s.WebhookURL != "" {
		req["webhook_url"] = s.WebhookURL
	}
	if s.Metadata != nil {
		req["metadata"] = s.Metadata
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	r, err := c.request(ctx, "POST", "/v1/jobs", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	if s.IdempotencyKey != "" {
		r.Header.Set("Idempotency-Key", s.IdempotencyKey)
	}
	var j Job
	return &j, c.do(r, http.StatusAccepted, &j)
}

// Get reads a job; with wait > 0 the server holds the request until the
// job ends or wait passes.
func (c *Client) Get(ctx context.Context, id string, wait time.Duration) (*Job, error) {
	path := "/v1/jobs/" + url.PathEscape(id)
	if wait > 0 {
		path += "?wait=" + wait.String()
	}
	req, err := c.request(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	var j Job
	return &j, c.do(req, http.StatusOK, &j)
}

// Wait long-polls until the job ends or ctx does. The server is woken by
// the job's events, so a wait costs no polling.
func (c *Client) Wait(ctx context.Context, id string) (*Job, error) {
	for {
		j, err := c.Get(ctx, id, 30*time.Second)
		if err != nil || j.Terminal() {
			return j, err
		}
	}
}

// Cancel cancels a job that has not ended.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	req, err := c.request(ctx, "POST", "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil)
	if err != nil {
		return nil, err
	}
	var j Job
	return &j, c.do(req, http.StatusOK, &j)
}

// Models lists the models the fleet serves.
func (c *Client) Models(ctx context.Context) ([]Model, error) {
	req, err := c.request(ctx, "GET", "/v1/models", nil)
	if err != nil {
		return nil, err
	}
	var ms []Model
	return ms, c.do(req, http.StatusOK, &ms)
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	return req, nil
}

func (c *Client) do(req *http.Request, want int, out any) error {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return errorOf(resp)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// errorOf reads an error answer.
func errorOf(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	var body struct {
		Error *Error `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &body) == nil && body.Error != nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
