package webhook

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"
)

// Event types, as in API.md.
const (
	EventJobSucceeded   = "job.succeeded"
	EventJobFailed      = "job.failed"
	EventJobCanceled    = "job.canceled"
	EventBatchCompleted = "batch.completed"
)

// Event is the JSON body of every webhook.
type Event struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// timeLayout is RFC 3339 with milliseconds, as everywhere in the API.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// NewEventID returns a fresh webhook-id: "msg_" and 26 base32 characters
// (128 random bits).
func NewEventID() string { return "msg_" + rand.Text() }

// NewEvent builds the body of one event and a fresh webhook-id for it. The
// body is what gets signed and sent, byte for byte, on every attempt.
func NewEvent(typ string, data any, now time.Time) (id string, body []byte, err error) {
	switch typ {
	case EventJobSucceeded, EventJobFailed, EventJobCanceled, EventBatchCompleted:
	default:
		return "", nil, fmt.Errorf("webhook: unknown event type %q", typ)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return "", nil, fmt.Errorf("webhook: encode %s data: %w", typ, err)
	}
	body, err = json.Marshal(Event{Type: typ, Timestamp: now.UTC().Format(timeLayout), Data: raw})
	if err != nil {
		return "", nil, fmt.Errorf("webhook: encode %s event: %w", typ, err)
	}
	return NewEventID(), body, nil
}
