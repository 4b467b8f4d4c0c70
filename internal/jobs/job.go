// Package jobs holds the job: its identity, tenant, tier and deadline, the
// states it moves through and which moves are legal, the message that
// carries it through the queues, and the Redis store of its record.
package jobs

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// State is where a job is in its life.
type State string

// The states of API.md. A job reaches exactly one terminal state, once.
const (
	Queued    State = "queued"
	Scheduled State = "scheduled"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Canceled  State = "canceled"
	Expired   State = "expired"
)

// Terminal reports whether no further work will happen to a job in s.
func (s State) Terminal() bool {
	switch s {
	case Succeeded, Failed, Canceled, Expired:
		return true
	}
	return false
}

// legal lists, for each target state, the states a job may move from.
var legal = map[State][]State{
	Scheduled: {Queued},
	// running -> running is a redelivery after a worker died mid-job.
	Running:   {Scheduled, Running},
	Succeeded: {Running},
	// A job may fail before it runs: bad input found by the scheduler, or
	// the queue giving up on a job that killed every worker it reached.
	Failed:   {Queued, Scheduled, Running},
	Canceled: {Queued, Scheduled, Running},
	Expired:  {Succeeded, Failed, Canceled},
}

// From lists the states from which a job may move to s.
func From(s State) []State { return legal[s] }

// CanTransition reports whether a job may move from one state to another.
func CanTransition(from, to State) bool {
	for _, f := range legal[to] {
		if f == from {
			return true
		}
	}
	return false
}

// Error is why a job failed: a stable snake_case code and a message.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error makes *Error an error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Job is the record of one job, as stored and as the API shows it.
type Job struct {
	ID           string          `json:"id"`
	Tenant       string          `json:"-"`
	Status       State           `json:"status"`
	Model        string          `json:"model"`
	ModelVersion string          `json:"model_version,omitempty"`
	Tier         string          `json:"tier"`
	CreatedAt    time.Time       `json:"created_at"`
	ScheduledAt  time.Time       `json:"scheduled_at"`
	StartedAt    time.Time       `json:"started_at"`
	FinishedAt   time.Time       `json:"finished_at"`
	Deadline     time.Time       `json:"deadline"`
	MetDeadline  *bool           `json:"met_deadline"`
	Attempts     int             `json:"attempts"`
	Result       json.RawMessage `json:"result"`
	Error        *Error          `json:"error"`
	Metadata     json.RawMessage `json:"metadata"`
	BatchID      string          `json:"batch_id,omitempty"`
	FileName     string          `json:"file_name,omitempty"`
	// Where the input lies and what it is: an S3 object (InputKey), or
	// the bytes themselves (Input) for an input that travels inline in
	// the queue message.
	InputKey    string `json:"-"`
	Input       []byte `json:"-"`
	ContentType string `json:"-"`
	InputSize   int64  `json:"-"`
	WebhookURL  string `json:"webhook_url,omitempty"`
	// Progress is a document job's pages read so far.
	Progress *Progress `json:"progress,omitempty"`
}

// NewID returns a fresh job id: a ULID, so ids sort by creation time.
func NewID() string { return strings.ToLower(ulid.Make().String()) }

// TimeFormat is RFC 3339 with milliseconds, as API.md wants every time.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON renders times with milliseconds and zero times as null.
func (j Job) MarshalJSON() ([]byte, error) {
	type plain Job
	return json.Marshal(struct {
		plain
		CreatedAt   *string `json:"created_at"`
		ScheduledAt *string `json:"scheduled_at"`
		StartedAt   *string `json:"started_at"`
		FinishedAt  *string `json:"finished_at"`
		Deadline    *string `json:"deadline"`
	}{
		plain:       plain(j),
		CreatedAt:   fmtTime(j.CreatedAt),
		ScheduledAt: fmtTime(j.ScheduledAt),
		StartedAt:   fmtTime(j.StartedAt),
		FinishedAt:  fmtTime(j.FinishedAt),
		Deadline:    fmtTime(j.Deadline),
	})
}

func fmtTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(TimeFormat)
	return &s
}
