package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/intake"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/tenants"
	"github.com/inferq/inferq/internal/webhook"
)

// Bounds on the parts of a submit other than the input.
const (
	maxFieldBytes    = 64 << 10
	maxMetadataBytes = 16 << 10
	maxURLBytes      = 2048
	maxDeadline      = 7 * 24 * time.Hour
)

// Bounds on the JSON submit bodies held at once (readJSON).
const (
	jsonBudget = 256 << 20
	jsonWait   = 5 * time.Second
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
	// uploadID names a presigned upload holding the input (JSON form);
	// upload is that upload as checked.
	uploadID string
	upload   *upload
	// jobWebhooks: a batch's jobs send their own events too.
	jobWebhooks bool
	// fp fingerprints the request for its Idempotency-Key; nil without.
	fp *fingerprint
	// dry: the request replays a used Idempotency-Key; it is read and
	// fingerprinted, and nothing is stored.
	dry bool
}

func newSubmission(idem *idempotency) *submission {
	sub := &submission{}
	if idem != nil {
		sub.fp = newFingerprint()
		sub.dry = idem.replay != nil
	}
	return sub
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
	idem, err := s.admit(ctx, r, t)
	if err != nil {
		return err
	}
	defer idem.release(ctx)
	j := &jobs.Job{ID: jobs.NewID(), Tenant: t.Name, Tier: t.Tier, CreatedAt: start.UTC()}
	// Room for the form fields around the input; the input itself is
	// counted on its own.
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxInputBytes*4/3+1<<20)

	sub := newSubmission(idem)
	g := s.cfg.Intake.Gather(ctx)
	durable := false
	defer func() { g.Close(durable) }()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		err = s.readMultipart(r, j, sub, g)
	case "application/json":
		err = s.readJSON(ctx, r, j, sub, g)
	default:
		err = errf(http.StatusUnsupportedMediaType, "unsupported_request_type", "send multipart/form-data or application/json")
	}
	if err == nil && sub.dry {
		return idem.answer(w, sub.fp.sum("POST /v1/jobs", sub))
	}
	if err == nil {
		err = s.accept(ctx, j, t, sub, g)
	}
	if err != nil {
		return err
	}
	durable = true
	if sub.upload != nil {
		s.cfg.Intake.RemoveUpload(context.WithoutCancel(ctx), sub.upload.key)
	}
	s.m.submitted.WithLabelValues(j.Model, j.Tier).Inc()
	s.m.submitDur.Observe(time.Since(start).Seconds())
	s.log.Debug("job accepted", "job", j.ID, "tenant", t.Name, "model", j.Model, "tier", j.Tier, "bytes", j.InputSize)
	body, _ := json.Marshal(jobAccepted{
		ID: j.ID, Status: string(jobs.Queued), Model: j.Model, Tier: j.Tier,
		CreatedAt:           j.CreatedAt.Format(jobs.TimeFormat),
		Deadline:            j.Deadline.UTC().Format(jobs.TimeFormat),
		EstimatedCompletion: s.estimate(j).UTC().Format(jobs.TimeFormat),
		StatusURL:           "/v1/jobs/" + j.ID,
	})
	if sub.fp != nil {
		if err := idem.commit(ctx, sub.fp.sum("POST /v1/jobs", sub), http.StatusAccepted, body); err != nil {
			s.log.Warn("idempotency key not recorded", "job", j.ID, "tenant", t.Name, "err", err)
		}
	}
	writeRaw(w, http.StatusAccepted, body)
	return nil
}

// checkQueue refuses a submit that would take the tenant past its queue
// quota (max_queued): adding jobs more to its unfinished count.
func (s *Server) checkQueue(ctx context.Context, t *tenants.Tenant, adding int64) error {
	n, err := s.cfg.Store.Unfinished(ctx, t.Name)
	if err != nil {
		return err
	}
	if n >= t.MaxQueued || n+adding > t.MaxQueued {
		e := errf(http.StatusTooManyRequests, "queue_quota_exceeded",
			fmt.Sprintf("tenant %s has %d unfinished jobs, its limit is %d", t.Name, n, t.MaxQueued))
		if adding > 1 {
			e.Message += fmt.Sprintf("; this batch would add %d", adding)
		}
		e.RetryAfter = 5 * time.Second
		return e
	}
	return nil
}

// checkWebhook refuses a webhook URL the SSRF guard would not deliver to,
// or one that answered 410 Gone before.
func (s *Server) checkWebhook(ctx context.Context, t *tenants.Tenant, raw string) error {
	if raw == "" {
		return nil
	}
	if s.cfg.WebhookGuard != nil {
		if err := s.cfg.WebhookGuard.CheckURL(ctx, raw); err != nil {
			if errors.Is(err, webhook.ErrForbidden) {
				return errf(http.StatusBadRequest, "webhook_url_forbidden",
					"webhook_url resolves to an address webhooks may not reach (private, loopback, link-local or reserved): "+err.Error())
			}
			return errf(http.StatusBadRequest, "invalid_webhook_url", "webhook_url cannot be used: "+err.Error())
		}
	}
	if s.cfg.WebhookGone != nil {
		gone, err := s.cfg.WebhookGone.IsGone(ctx, t.Name, raw)
		if err != nil {
			return err
		}
		if gone {
			return errf(http.StatusBadRequest, "webhook_url_gone", "webhook_url answered 410 Gone to an earlier webhook; no more webhooks are sent to it")
		}
	}
	return nil
}

// accept checks the whole submission, then makes the job durable
// (intake.Commit: the record, then the message; only a stored message
// earns a 202, and a failure withdraws the record).
func (s *Server) accept(ctx context.Context, j *jobs.Job, t *tenants.Tenant, sub *submission, g *intake.Gather) error {
	if err := s.checkModel(sub.model, sub.contentType); err != nil {
		return err
	}
	j.Model, j.ContentType, j.InputSize = sub.model, sub.contentType, sub.size
	j.WebhookURL, j.Metadata = sub.webhookURL, sub.metadata
	var err error
	if j.Deadline, err = s.deadline(t, j.CreatedAt, sub); err != nil {
		return err
	}
	if err := s.checkWebhook(ctx, t, sub.webhookURL); err != nil {
		return err
	}
	if err := s.checkDocument(ctx, j, g); err != nil {
		return err
	}
	if sub.upload != nil {
		if err := s.claimUpload(ctx, sub.uploadID, j.ID); err != nil {
			return err
		}
		inp, err := g.Adopt(sub.upload.key, sub.upload.etag, blob.InputKey(j.Tenant, j.ID), j.FileName, sub.contentType, sub.size)
		if err != nil {
			s.unclaimUpload(ctx, sub.uploadID, j.ID)
			if errors.Is(err, intake.ErrUploadChanged) {
				return errf(http.StatusConflict, "upload_changed", "the upload was written again while the job was being accepted; submit again")
			}
			return err
		}
		j.InputKey = inp.Key
	}
	if err := s.cfg.Intake.Commit(ctx, g, nil, []*jobs.Job{j}); err != nil {
		s.unclaimUpload(ctx, sub.uploadID, j.ID)
		return notDurable(err)
	}
	return nil
}

// notDurable answers a submit that could not be made durable: 503, unless
// the request itself went away.
func notDurable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return errUnavailable
}

// deadline is a job's deadline: its tier's from created, or the later one
// the submit asked for.
func (s *Server) deadline(t *tenants.Tenant, created time.Time, sub *submission) (time.Time, error) {
	tier, _ := s.cfg.Tenants.Tier(t.Tier)
	d := created.Add(tier.Deadline)
	want := sub.deadline
	if sub.deadlineMS > 0 {
		want = created.Add(time.Duration(sub.deadlineMS) * time.Millisecond)
	}
	if want.IsZero() {
		return d, nil
	}
	if want.Before(d) {
		return d, errf(http.StatusBadRequest, "deadline_too_early",
			fmt.Sprintf("tier %s promises results within %s; a job may ask for a later deadline, not an earlier one", tier.Name, tier.Deadline))
	}
	if want.Sub(created) > maxDeadline {
		return d, errf(http.StatusBadRequest, "deadline_too_late", "a deadline may be at most 7 days away")
	}
	return want, nil
}

// estimate is when the job should finish: now plus the wait the leading
// scheduler expects for its model and tier (queue ahead, the fleet's
// measured rate, the tier's share), published in NATS KV. It is not
// clamped to the deadline: a job expected late is told so. Without an
// estimate yet (no scheduler has measured the model), it says a second.
func (s *Server) estimate(j *jobs.Job) time.Time {
	if s.cfg.Estimates != nil {
		if wait, ok := s.cfg.Estimates.Wait(j.Model, j.Tier); ok && wait > 0 {
			return j.CreatedAt.Add(wait)
		}
	}
	return j.CreatedAt.Add(time.Second)
}

func (s *Server) checkModel(name, contentType string) error {
	if name == "" {
		return errf(http.StatusBadRequest, "missing_model", "the model field is required")
	}
	m := s.model(name)
	if m == nil {
		return errUnknownModel(name)
	}
	if !accepts(m.ContentTypes, contentType) {
		return unsupported(name, contentType, m.ContentTypes)
	}
	return nil
}

func errUnknownModel(name string) *apiError {
	return errf(http.StatusNotFound, "unknown_model", fmt.Sprintf("no model %q (GET /v1/models lists them)", name))
}

// accepts matches a content type against a model's list ("*/*" and
// "image/*" style wildcards; an empty list takes anything).
func accepts(list []string, ct string) bool {
	if bare, _, err := mime.ParseMediaType(ct); err == nil {
		ct = bare
	}
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
// limits, the file part goes to intake under the input's limit.
func (s *Server) readMultipart(r *http.Request, j *jobs.Job, sub *submission, g *intake.Gather) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return errf(http.StatusBadRequest, "malformed_request", "bad multipart body: "+err.Error())
	}
	hasFile := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bodyError(err)
		}
		name := part.FormName()
		if name == "file" {
			if hasFile {
				return errf(http.StatusBadRequest, "malformed_request", "one file per job (POST /v1/batches takes many)")
			}
			hasFile = true
			j.FileName = cleanFileName(part.FileName())
			if err := s.readInput(j, sub, g, part, part.Header.Get("Content-Type")); err != nil {
				return err
			}
			continue
		}
		if err := readField(part, sub); err != nil {
			return err
		}
	}
	if !hasFile {
		return errf(http.StatusBadRequest, "missing_input", "a file part is required")
	}
	return nil
}

// readField reads one small form field into sub.
func readField(part *multipart.Part, sub *submission) error {
	name := part.FormName()
	val, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
	if err != nil {
		return bodyError(err)
	}
	if len(val) > maxFieldBytes {
		return errf(http.StatusBadRequest, "field_too_large", fmt.Sprintf("field %s is over %d bytes", name, maxFieldBytes))
	}
	return sub.setField(name, string(val))
}

// readInput reads the job's one input through intake: inline when small,
// else to S3 under the job's key. With the model already known, an input
// it cannot take is refused before anything is stored. Replaying an
// Idempotency-Key, it only reads (and fingerprints) the input.
func (s *Server) readInput(j *jobs.Job, sub *submission, g *intake.Gather, r io.Reader, declared string) error {
	if sub.model != "" && s.model(sub.model) == nil {
		return errUnknownModel(sub.model)
	}
	if sub.fp != nil {
		r = io.TeeReader(r, sub.fp.file(j.FileName, declared))
	}
	key := blob.InputKey(j.Tenant, j.ID)
	if sub.dry {
		key = ""
	}
	inp, err := g.Add(r, key, declared, j.FileName, func(ct string) error {
		if sub.model == "" {
			return nil // checked once the model is known
		}
		return s.checkModel(sub.model, ct)
	})
	if sub.fp != nil {
		sub.fp.end()
	}
	if err != nil {
		return inputError(err)
	}
	if inp.Refused != nil && !sub.dry {
		return inputError(inp.Refused)
	}
	j.InputKey, j.Input = inp.Key, inp.Data
	sub.contentType, sub.size = inp.ContentType, inp.Size
	return nil
}

// inputError maps what went wrong reading an input to the API's answer:
// intake's refusals to their codes, the body past its limit to 413, a
// broken body to 400; anything else (a store that failed) stays an error,
// answered 503.
func inputError(err error) error {
	var ae *apiError
	var ie *intake.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ie) && ie.Code == intake.CodeEmpty:
		return errf(http.StatusUnprocessableEntity, ie.Code, ie.Message)
	case errors.As(err, &ie):
		return errf(http.StatusRequestEntityTooLarge, ie.Code, ie.Message)
	case errors.As(err, &mbe):
		return errf(http.StatusRequestEntityTooLarge, "input_too_large", "request body over the limit")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, multipart.ErrMessageTooLarge):
		return bodyError(err)
	}
	return err
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
	case "job_webhooks":
		b, err := strconv.ParseBool(strings.TrimSpace(val))
		if err != nil {
			return errf(http.StatusBadRequest, "invalid_field", "job_webhooks must be true or false")
		}
		sub.jobWebhooks = b
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

func (s *Server) readJSON(ctx context.Context, r *http.Request, j *jobs.Job, sub *submission, g *intake.Gather) error {
	// A JSON body is held whole while it is decoded (base64 and all): the
	// bodies held at once share a budget, so that many large ones cannot
	// grow the process without bound. A request waits a moment for its
	// share, then is told to come back.
	hold := s.cfg.MaxInputBytes*4/3 + 1<<20
	if r.ContentLength > 0 {
		hold = min(hold, r.ContentLength)
	}
	hold = min(hold, jsonBudget)
	wctx, cancel := context.WithTimeout(ctx, jsonWait)
	err := s.jsonBodies.Acquire(wctx, hold)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e := errf(http.StatusServiceUnavailable, "busy", "too many large JSON submits at once; retry, or send the input as multipart/form-data, which is streamed")
		e.RetryAfter = time.Second
		return e
	}
	defer s.jsonBodies.Release(hold)
	var req jsonSubmit
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
		}
		return errf(http.StatusBadRequest, "malformed_json", "the body is not valid JSON: "+err.Error())
	}
	sub.model, sub.deadlineMS = strings.TrimSpace(req.Model), req.DeadlineMS
	if req.DeadlineMS < 0 {
		return errf(http.StatusBadRequest, "invalid_deadline", "deadline_ms must be non-negative")
	}
	if req.Deadline != "" {
		if err := sub.setField("deadline", req.Deadline); err != nil {
			return err
		}
	}
	if err := sub.setWebhook(req.WebhookURL); err != nil {
		return err
	}
	if err := sub.setMetadata(req.Metadata); err != nil {
		return err
	}
	if req.Input == nil || (req.Input.Data == nil && req.Input.UploadID == "") {
		return errf(http.StatusBadRequest, "missing_input", `input.data (base64) or input.upload_id is required`)
	}
	if req.Input.Data != nil && req.Input.UploadID != "" {
		return errf(http.StatusBadRequest, "malformed_request", "send input.data or input.upload_id, not both")
	}
	// Check the model before storing anything.
	if sub.model != "" && s.model(sub.model) == nil {
		return errUnknownModel(sub.model)
	}
	if req.Input.UploadID != "" {
		sub.uploadID = req.Input.UploadID
		if sub.dry {
			return nil
		}
		return s.useUpload(ctx, j, sub)
	}
	if int64(base64.StdEncoding.DecodedLen(len(*req.Input.Data))) > s.cfg.MaxInputBytes+2 {
		return errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
	}
	data, err := base64.StdEncoding.DecodeString(*req.Input.Data)
	if err != nil {
		return errf(http.StatusUnprocessableEntity, "undecodable_input", "input.data is not valid base64")
	}
	if int64(len(data)) > s.cfg.MaxInputBytes {
		return errf(http.StatusRequestEntityTooLarge, "input_too_large", fmt.Sprintf("inputs are limited to %d bytes", s.cfg.MaxInputBytes))
	}
	return s.readInput(j, sub, g, bytes.NewReader(data), req.Input.ContentType)
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
