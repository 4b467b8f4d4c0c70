package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MessageVersion is the format of Message; a reader refuses other versions
// rather than guess.
const MessageVersion = 1

// Message carries a job through the JOBS and RUN streams. It holds what the
// scheduler and the worker need without a Redis read: the record stays the
// source of truth for state, the message for routing.
type Message struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Tier      string    `json:"tier"`
	Model     string    `json:"model"`
	CreatedAt time.Time `json:"created_at"`
	Deadline  time.Time `json:"deadline"`
	// InputKey names the input's S3 object; empty when the input rides
	// inline in Input.
	InputKey    string `json:"input_key,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	InputSize   int64  `json:"input_size"`
	// Input is the input itself when it is small enough to travel in the
	// message (INFERQ_INLINE_INPUT_BYTES): it lives exactly as long as the
	// message, which is until the job has ended.
	Input []byte `json:"input,omitempty"`
	// Notify says what the job's end must tell, so that the worker that
	// ends it need not read its record to find out. nil: a message from
	// before these hints; read the record.
	Notify *Notify `json:"notify,omitempty"`
}

// Notify is what a job's end must tell besides its event.
type Notify struct {
	// Webhook: the job has its own webhook_url.
	Webhook bool `json:"webhook,omitempty"`
	// Batch is the job's batch, whose counts settle when it ends.
	Batch string `json:"batch,omitempty"`
}

// MessageFor builds the queue message of a job.
func MessageFor(j *Job) Message {
	return Message{
		V: MessageVersion, ID: j.ID, Tenant: j.Tenant, Tier: j.Tier, Model: j.Model,
		CreatedAt: j.CreatedAt, Deadline: j.Deadline, InputKey: j.InputKey,
		ContentType: j.ContentType, InputSize: j.InputSize, Input: j.Input,
		Notify: &Notify{Webhook: j.WebhookURL != "", Batch: j.BatchID},
	}
}

// Encode renders the message for the wire.
func (m Message) Encode() []byte {
	b, _ := json.Marshal(m) // a struct of strings, times and ints cannot fail
	return b
}

// ErrBadMessage marks a message that cannot be read; it is never retried.
var ErrBadMessage = errors.New("bad job message")

// DecodeMessage reads and checks a message.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	switch {
	case m.V != MessageVersion:
		return m, fmt.Errorf("%w: version %d, want %d", ErrBadMessage, m.V, MessageVersion)
	case m.ID == "" || m.Tenant == "" || m.Model == "" || m.Tier == "":
		return m, fmt.Errorf("%w: id, tenant, model and tier are required", ErrBadMessage)
	case m.Deadline.IsZero():
		return m, fmt.Errorf("%w: no deadline", ErrBadMessage)
	case (m.InputKey == "") == (m.Input == nil):
		return m, fmt.Errorf("%w: exactly one of input_key and input is required", ErrBadMessage)
	}
	return m, nil
}

// Ended is a job that reached a terminal state, as its message knew it,
// for what must follow its end (webhooks, batch completion).
type Ended struct {
	Message     Message
	State       State
	MetDeadline bool
}
