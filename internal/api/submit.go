package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/tenants"
)

// Bounds on the parts of a submit other than the input.
const (
	maxFieldBytes    = 64 << 10
	maxMetadataBytes = 16 << 10
	maxURLBytes      = 2048
	maxDeadline      = 7 * 24 * time.Hour
)

// submission is a parsed submit request before the job exists.
type submission struct {
	model       string
	deadline    time.Time // zero: the tier's
	deadlineMS  int64     // >0: deadline from now
	webhookURL  string
	metadata    json.RawMessage
	contentType string
	size        int64
	uploaded    bool
}

// jobAccepted is the 202 body.
type jobAccepted struct {
	ID                  string `json:"id"`
	Status              string `json:"status"`
	Model               string `json:"model"`
	Tier                string `json:"tier"`
	CreatedAt           string `json:"created_at"`
	Deadline            string `json:"deadline"`
	EstimatedCompletion string `json:"estimated_completion"`
	StatusURL           string `json:"status_url"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	start := time.Now()
	ctx := r.Context()
	if n, err := s.cfg.Store.Unfinished(ctx, t.Name); err != nil {
		return err
	} else if n >= t.MaxQueued {
		e := errf(http.StatusTooManyRequests, "queue_quota_exceeded",
			fmt.Sprintf("tenant %s has %d unfinished jobs, its limit is %d", t.Name, n, t.MaxQueued))
		e.RetryAfter = 5 * time.Second
		return e
	}
	j := &jobs.Job{ID: jobs.NewID(), Tenant: t.Name, Tier: t.Tier, CreatedAt: start.UTC()}
	j.InputKey = blob.InputKey(t.Name, j.ID)
	// Room for the form fields around the input; the input itself is
	// counted on its own.
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxInputBytes*4/3+1<<20)

	var sub *submission
	var err error
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		sub, err = s.readMultipart(ctx, r, j)
	case "application/json":
		sub, err = s.readJSON(ctx, r, j)
	default:
		err = errf(http.StatusUnsupportedMediaType, "unsupported_request_type", "send multipart/form-data or application/json")
	}
	if err != nil {
		if sub != nil && sub.uploaded {
			_ = s.cfg.Blob.Delete(context.WithoutCancel(ctx), j.InputKey)
		}
		return err
	}
	if err := s.accept(ctx, j, t, sub); err != nil {
		_ = s.cfg.Blob.Delete(context.WithoutCancel(ctx), j.InputKey)
		return err
	}
	s.m.submitted.WithLabelValues(j.Model, j.Tier).Inc()
	s.m.submitDur.Observe(time.Since(start).Seconds())
	s.log.Debug("job accepted", "job", j.ID, "tenant", t.Name, "model", j.Model, "tier", j.Tier, "bytes", j.InputSize)
	writeJSON(w, http.StatusAccepted, jobAccepted{
		ID: j.ID, Status: string(jobs.Queued), Model: j.Model, Tier: j.Tier,
		CreatedAt:           j.CreatedAt.Format(jobs.TimeFormat),
		Deadline:            j.Deadline.UTC().Format(jobs.TimeFormat),
		EstimatedCompletion: s.estimate(j).UTC().Format(jobs.TimeFormat),
		StatusURL:           "/v1/jobs/" + j.ID,
	})
	return nil
}

// accept checks the whole submission, then makes the job durable: the
// record in Redis first, then the message in JetStream; only a stored
// message earns a 202. A failed publish removes the record again.
func (s *Server) accept(ctx context.Context, j *jobs.Job, t *tenants.Tenant, sub *submission) error {
	if err := s.checkModel(sub.model, sub.contentType); err != nil {
		return err
	}
	tier, _ := s.cfg.Tenants.Tier(t.Tier)
	j.Model, j.ContentType, j.InputSize = sub.model, sub.contentType, sub.size
	j.WebhookURL, j.Metadata = sub.webhookURL, sub.metadata
	j.Deadline = j.CreatedAt.Add(tier.Deadline)
	want := sub.deadline
	if sub.deadlineMS > 0 {
		want = j.CreatedAt.Add(time.Duration(sub.deadlineMS) * time.Millisecond)
	}
	if !want.IsZero() {
		if want.Before(j.Deadline) {
			return errf(http.StatusBadRequest, "deadline_too_early",
				fmt.Sprintf("tier %s promises results within %s; a job may ask for a later deadline, not an earlier one", tier.Name, tier.Deadline))
		}
		if want.Sub(j.CreatedAt) > maxDeadline {
			return errf(http.StatusBadRequest, "deadline_too_late", "a deadline may be at most 7 days away")
		}
		j.Deadline = want
	}
	if err := s.cfg.Store.Create(ctx, j); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishWait)
	defer cancel()
	msg := jobs.MessageFor(j)
	if err := queue.Publish(pctx, s.cfg.JS, queue.SubmitSubject(j.Tier), j.ID, msg.Encode()); err != nil {
		s.log.Warn("publish failed, job refused", "job", j.ID, "tenant", j.Tenant, "err", err)
		_ = s.cfg.Store.Discard(context.WithoutCancel(ctx), j)
		return errUnavailable
	}
	return nil
}

// estimate is when the job should finish: for now the fleet's promise,
// the earlier of a second from now and the deadline.
func (s *Server) estimate(j *jobs.Job) time.Time {
	est := j.CreatedAt.Add(time.Second)
	if j.Deadline.Before(est) {
		return j.Deadline
	}
	return est
}

func (s *Server) checkModel(name, contentType string) error {
	if name == "" {
		return errf(http.StatusBadRequest, "missing_model", "the model field is required")
	}
	m := s.model(name)
	if m == nil {
		return errf(http.StatusNotFound, "unknown_model", fmt.Sprintf("no model %q (GET /v1/models lists them)", name))
	}
	if !accepts(m.ContentTypes, contentType) {
		return errf(http.StatusUnsupportedMediaType, "unsupported_content_type",
			fmt.Sprintf("model %s takes %s, not %s", name, strings.Join(m.ContentTypes, ", "), contentType))
	}
	return nil
}

// accepts matches a content type against a model's list ("*/*" and
// "image/*" style wildcards; an empty list takes anything).
func accepts(list []string, ct string) bool {
	if len(list) == 0 {
		return true
	}
	for _, a := range list {
		if a == "*/*" || a == ct {
			return true
		}
		if prefix, ok := strings.CutSuffix(a, "/*"); ok && strings.HasPrefix(ct, prefix+"/") {
			return true
		}
	}
	return false
}

// readMultipart streams a multipart submit: fields are read with small
// limits, the file part goes straight to S3 under its size limit.
func (s *Server) readMultipart(ctx context.Context, r *http.Request, j *jobs.Job) (*submission, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, errf(http.StatusBadRequest, "malformed_request", "bad multipart body: "+err.Error())
	}
	sub := &submission{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sub, bodyError(err)
		}
		name := part.FormName()
		if name == "file" {
			if sub.uploaded {
				return sub, errf(http.StatusBadRequest, "malformed_request", "one file per job (POST /v1/batches takes many)")
			}
			if sub.model != "" {
				// Refuse before uploading when the model is already known.
				if m := s.model(sub.model); m == nil {
					return sub, errf(http.StatusNotFound, "unknown_model", fmt.Sprintf("no model %q (GET /v1/models lists them)", sub.model))
				}
			}
			j.FileName = cleanFileName(part.FileName())
			if err := s.upload(ctx, j, sub, part, part.Header.Get("Content-Type")); err != nil {
				return sub, err
			}
			continue
		}
		val, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		if err != nil {
			return sub, bodyError(err)
		}
		if len(val) > maxFieldBytes {
			return sub, errf(http.StatusBadRequest, "field_too_large", fmt.Sprintf("field %s is over %d bytes", name, maxFieldBytes))
		}
		if err := sub.setField(name, string(val)); err != nil {
			return sub, err
		}
	}
	if !sub.uploaded {
		return sub, errf(http.StatusBadRequest, "missing_input", "a file part is required")
	}
	return sub, nil
}

// upload streams one input to S3, sniffing its type when the client did
// not name one, and refusing it when it grows past the limit.
func (s *Server) upload(ctx context.Context, j *jobs.Job, sub *submission, r io.Reader, contentType string) error {
	br := bufio.NewReaderSize(r, 4096)
	ct, _, _ := mime.ParseMediaType(contentType)
	if ct == "" || ct == "application/octet-stream" {
		head, _ := br.Peek(512)
		ct, _, _ = mime.ParseMediaType(http.DetectContentType(head))
	}
	lr := &limitReader{r: br, left: s.cfg.MaxInputBytes}
	n, err := s.cfg.Blob.Put(ctx, j.InputKey, lr, -1, ct)
	sub.uploaded = true
	if lr.over {
		return errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
		}
		return fmt.Errorf("store input: %w", err)
	}
	if n == 0 {
		return errf(http.StatusUnprocessableEntity, "empty_input", "the input is empty")
	}
	sub.contentType, sub.size = ct, n
	return nil
}

// limitReader fails once more than left bytes were read.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

var errOverLimit = errors.New("input over the size limit")

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over = true
		return n, errOverLimit
	}
	return n, err
}

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errf(http.StatusRequestEntityTooLarge, "input_too_large", "request body over the limit")
	}
	return errf(http.StatusBadRequest, "malformed_request", "bad request body: "+err.Error())
}

func (sub *submission) setField(name, val string) error {
	switch name {
	case "model":
		sub.model = strings.TrimSpace(val)
	case "deadline":
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(val))
		if err != nil {
			return errf(http.StatusBadRequest, "invalid_deadline", "deadline must be RFC 3339")
		}
		sub.deadline = t
	case "deadline_ms":
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil || n < 0 {
			return errf(http.StatusBadRequest, "invalid_deadline", "deadline_ms must be a non-negative integer")
		}
		sub.deadlineMS = n
	case "webhook_url":
		return sub.setWebhook(val)
	case "metadata":
		return sub.setMetadata([]byte(val))
	}
	// Unknown fields are ignored, so that newer clients work with older
	// servers.
	return nil
}

func (sub *submission) setWebhook(raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || len(raw) > maxURLBytes || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errf(http.StatusBadRequest, "invalid_webhook_url", "webhook_url must be an http(s) URL of at most 2048 bytes")
	}
	sub.webhookURL = raw
	return nil
}

func (sub *submission) setMetadata(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if len(b) > maxMetadataBytes {
		return errf(http.StatusBadRequest, "metadata_too_large", fmt.Sprintf("metadata is limited to %d bytes", maxMetadataBytes))
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return errf(http.StatusBadRequest, "invalid_metadata", "metadata must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return errf(http.StatusBadRequest, "invalid_metadata", "metadata must be a JSON object")
	}
	sub.metadata = buf.Bytes()
	return nil
}

// jsonSubmit is the application/json form of a submit.
type jsonSubmit struct {
	Model string `json:"model"`
	Input *struct {
		Data        *string `json:"data"`
		ContentType string  `json:"content_type"`
		UploadID    string  `json:"upload_id"`
	} `json:"input"`
	Deadline   string          `json:"deadline"`
	DeadlineMS int64           `json:"deadline_ms"`
	WebhookURL string          `json:"webhook_url"`
	Metadata   json.RawMessage `json:"metadata"`
}

func (s *Server) readJSON(ctx context.Context, r *http.Request, j *jobs.Job) (*submission, error) {
	var req jsonSubmit
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
		}
		return nil, errf(http.StatusBadRequest, "malformed_json", "the body is not valid JSON: "+err.Error())
	}
	sub := &submission{model: strings.TrimSpace(req.Model), deadlineMS: req.DeadlineMS}
	if req.DeadlineMS < 0 {
		return nil, errf(http.StatusBadRequest, "invalid_deadline", "deadline_ms must be non-negative")
	}
	if req.Deadline != "" {
		if err := sub.setField("deadline", req.Deadline); err != nil {
			return nil, err
		}
	}
	if err := sub.setWebhook(req.WebhookURL); err != nil {
		return nil, err
	}
	if err := sub.setMetadata(req.Metadata); err != nil {
		return nil, err
	}
	if req.Input == nil || (req.Input.Data == nil && req.Input.UploadID == "") {
		return nil, errf(http.StatusBadRequest, "missing_input", `input.data (base64) or input.upload_id is required`)
	}
	if req.Input.UploadID != "" {
		return nil, errf(http.StatusBadRequest, "uploads_unsupported", "presigned uploads are not available on this server yet; send input.data")
	}
	// Check the model before storing anything.
	if sub.model != "" && s.model(sub.model) == nil {
		return nil, errf(http.StatusNotFound, "unknown_model", fmt.Sprintf("no model %q (GET /v1/models lists them)", sub.model))
	}
	if int64(base64.StdEncoding.DecodedLen(len(*req.Input.Data))) > s.cfg.MaxInputBytes+2 {
		return nil, errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
	}
	data, err := base64.StdEncoding.DecodeString(*req.Input.Data)
	if err != nil {
		return nil, errf(http.StatusUnprocessableEntity, "undecodable_input", "input.data is not valid base64")
	}
	if int64(len(data)) > s.cfg.MaxInputBytes {
		return nil, errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
	}
	return sub, s.upload(ctx, j, sub, bytes.NewReader(data), req.Input.ContentType)
}

// cleanFileName keeps the last path element of a client's file name,
// bounded, for display only.
func cleanFileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}
