package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// TaskType is the asynq task type of one webhook delivery.
const TaskType = "webhook:deliver"

// QueueName is the asynq queue deliveries go to; a server that delivers
// webhooks must list it in asynq.Config.Queues.
const QueueName = "webhooks"

// schedule is the Standard Webhooks retry schedule: the first attempt at
// once, then these waits before each retry.
var schedule = [...]time.Duration{
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	14 * time.Hour,
	20 * time.Hour,
	24 * time.Hour,
}

// MaxRetry is the number of retries after the first attempt, one per step
// of the schedule: ten attempts over about three days.
const MaxRetry = len(schedule)

// MaxRetryAfter caps how long a receiver's Retry-After may hold back a
// retry.
const MaxRetryAfter = 24 * time.Hour

// DefaultTimeout is how long one attempt may take, from dial to the end of
// the response headers.
const DefaultTimeout = 15 * time.Second

// taskTimeout bounds one asynq run of a delivery; it is above
// DefaultTimeout so the HTTP timeout, not asynq's, ends a slow attempt.
const taskTimeout = 30 * time.Second

// Schedule returns a copy of the waits before each retry.
func Schedule() []time.Duration { return append([]time.Duration(nil), schedule[:]...) }

// Delivery is the payload of a delivery task. It holds no secret: the
// handler looks the tenant's secret up when it signs, so Redis never holds
// webhook secrets and a rotated secret applies to pending retries too.
type Delivery struct {
	// ID is the webhook-id: the same on every attempt and on replay, so
	// the receiver can deduplicate.
	ID string `json:"id"`
	// Type is the event type, kept for listing failed deliveries.
	Type   string `json:"type,omitempty"`
	Tenant string `json:"tenant"`
	URL    string `json:"url"`
	// Body is the exact request body; it is signed as is.
	Body []byte `json:"body"`
}

// NewTask returns the asynq task delivering d: queue QueueName, MaxRetry
// retries, and the asynq task id set to d.ID, so enqueueing the same event
// twice while the first is still held by asynq fails with
// asynq.ErrTaskIDConflict instead of sending it twice (callers treat that
// as success). opts come last and so override these defaults.
func NewTask(d Delivery, opts ...asynq.Option) *asynq.Task {
	payload, err := json.Marshal(d)
	if err != nil {
		// Strings and bytes always encode.
		panic(fmt.Sprintf("webhook: encode delivery: %v", err))
	}
	base := []asynq.Option{asynq.Queue(QueueName), asynq.MaxRetry(MaxRetry), asynq.Timeout(taskTimeout)}
	if d.ID != "" {
		base = append(base, asynq.TaskID(d.ID))
	}
	return asynq.NewTask(TaskType, payload, append(base, opts...)...)
}

// DeliveryError is a failed attempt that is worth retrying: a response
// other than 2xx and 410, or no response at all.
type DeliveryError struct {
	// Host is the destination host (the URL is not logged: its path or
	// query may hold the receiver's token).
	Host string
	// StatusCode is the response status, 0 when none arrived.
	StatusCode int
	// RetryAfter is the receiver's Retry-After, 0 when it sent none.
	RetryAfter time.Duration
	// Err is the transport error when StatusCode is 0.
	Err error
}

func (e *DeliveryError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("webhook to %s: %v", e.Host, e.Err)
	}
	s := fmt.Sprintf("webhook to %s: %d %s", e.Host, e.StatusCode, http.StatusText(e.StatusCode))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (Retry-After %s)", e.RetryAfter)
	}
	return s
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// RetryDelay is the asynq.RetryDelayFunc for deliveries: the n-th retry
// waits schedule[n] give or take 10 % (jitter, so a receiver that comes
// back is not hit by every queued event in the same second), or the
// receiver's Retry-After when that is later (capped at MaxRetryAfter).
// Tasks of other types get asynq.DefaultRetryDelayFunc, so one server may
// run webhooks next to other task types.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	if t != nil && t.Type() != TaskType {
		return asynq.DefaultRetryDelayFunc(n, err, t)
	}
	n = max(0, min(n, len(schedule)-1))
	d := schedule[n]
	d += time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	var de *DeliveryError
	if errors.As(err, &de) && de.RetryAfter > d {
		d = min(de.RetryAfter, MaxRetryAfter)
	}
	return d
}

// ParseRetryAfter reads a Retry-After header value: delay seconds or an
// HTTP date (relative to now). A date in the past gives 0. ok is false
// when v is empty or malformed.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return MaxRetryAfter, true
			}
			return 0, false
		}
		if secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(0, t.Sub(now)), true
}
