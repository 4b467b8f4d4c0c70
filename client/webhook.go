package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/inferq/inferq/internal/webhook/signature"
)

// Errors of webhook verification (see VerifyWebhook).
var (
	ErrWebhookHeaders   = signature.ErrMissingHeaders
	ErrWebhookTimestamp = signature.ErrInvalidTimestamp
	ErrWebhookTooOld    = signature.ErrTimestampTooOld
	ErrWebhookTooNew    = signature.ErrTimestampTooNew
	ErrWebhookSignature = signature.ErrNoMatch
)

// Webhook event types.
const (
	EventJobSucceeded   = "job.succeeded"
	EventJobFailed      = "job.failed"
	EventJobCanceled    = "job.canceled"
	EventBatchCompleted = "batch.completed"
)

// MaxWebhookBody bounds the body ParseWebhook reads.
const MaxWebhookBody = 16 << 20

// WebhookEvent is one verified webhook.
type WebhookEvent struct {
	// ID is the webhook-id: the same on every retry of one event, so a
	// receiver deduplicates on it.
	ID        string          `json:"-"`
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Job decodes the data of a job.* event.
func (e *WebhookEvent) Job() (*Job, error) {
	var j Job
	if err := json.Unmarshal(e.Data, &j); err != nil {
		return nil, fmt.Errorf("inferq: %s data: %w", e.Type, err)
	}
	return &j, nil
}

// Batch decodes the data of a batch.completed event.
func (e *WebhookEvent) Batch() (*Batch, error) {
	var b Batch
	if err := json.Unmarshal(e.Data, &b); err != nil {
		return nil, fmt.Errorf("inferq: %s data: %w", e.Type, err)
	}
	return &b, nil
}

// VerifyWebhook checks a received webhook's Standard Webhooks headers
// (webhook-id, webhook-timestamp within 5 minutes of now,
// webhook-signature) against secret, the tenant's webhook_secret, and
// decodes the event. body must be the raw request body, byte for byte.
func VerifyWebhook(secret string, h http.Header, body []byte) (*WebhookEvent, error) {
	if err := signature.Verify(secret, h, body, 0, time.Now()); err != nil {
		return nil, err
	}
	var e WebhookEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("inferq: webhook body: %w", err)
	}
	e.ID = h.Get(signature.HeaderID)
	return &e, nil
}

// ParseWebhook reads and verifies the webhook in r.
func ParseWebhook(secret string, r *http.Request) (*WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBody+1))
	if err != nil {
		return nil, fmt.Errorf("inferq: read webhook: %w", err)
	}
	if len(body) > MaxWebhookBody {
		return nil, errors.New("inferq: webhook body too large")
	}
	return VerifyWebhook(secret, r.Header, body)
}

// WebhookHandler is an http.Handler for a receiver: it verifies each
// webhook and hands it to fn. It answers 401 to a webhook that does not
// verify (inferq retries it, so a rotated secret loses nothing), 500 when
// fn fails (inferq retries it later, with the same webhook-id), and 204
// when fn succeeds.
func WebhookHandler(secret string, fn func(ctx context.Context, e *WebhookEvent) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		e, err := ParseWebhook(secret, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if err := fn(r.Context(), e); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
