package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/jobs"
)

// A batch lives in two Redis keys: the hash jobs.BatchKey(id), which holds
// the job counts by state (kept by every job transition) next to the
// batch's own fields below, and the list JobsKey(id) of its job ids in
// submit order.
//
// Fields of the batch hash besides the state counts; none may be a state
// name.
const (
	FieldTenant      = "tenant"
	FieldModel       = "model"
	FieldTier        = "tier"
	FieldJobs        = "jobs" // set last, when every job is durable
	FieldCreatedAt   = "created_at"
	FieldCompletedAt = "completed_at"
	FieldWebhookURL  = "webhook_url"
	FieldJobWebhooks = "job_webhooks"
	FieldMetadata    = "metadata"
	FieldMetDeadline = "met_deadline"
)

// JobsKey is the list of a batch's job ids, in submit order.
func JobsKey(id string) string { return jobs.BatchKey(id) + ":jobs" }

// ErrBatchNotFound is a batch that does not exist, or is still being
// submitted.
var ErrBatchNotFound = errors.New("batch not found")

// Counts are a batch's jobs by state, as API.md shows them: queued counts
// scheduled jobs too (both wait for a worker).
type Counts struct {
	Queued    int64 `json:"queued"`
	Running   int64 `json:"running"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Canceled  int64 `json:"canceled"`
	Expired   int64 `json:"expired,omitempty"`
}

// Batch is a batch as the API shows it.
type Batch struct {
	ID          string          `json:"id"`
	Tenant      string          `json:"-"`
	Status      string          `json:"status"` // in_progress or completed
	Model       string          `json:"model"`
	Tier        string          `json:"tier"`
	Jobs        int64           `json:"jobs"`
	Counts      Counts          `json:"counts"`
	Done        bool            `json:"done"`
	MetDeadline int64           `json:"met_deadline"`
	CreatedAt   time.Time       `json:"-"`
	CompletedAt time.Time       `json:"-"`
	Metadata    json.RawMessage `json:"metadata"`
	WebhookURL  string          `json:"webhook_url,omitempty"`
	JobWebhooks bool            `json:"job_webhooks,omitempty"`
	StatusURL   string          `json:"status_url"`
	ResultsURL  string          `json:"results_url"`
}

// MarshalJSON renders times in the API's format, zero times as null.
func (b Batch) MarshalJSON() ([]byte, error) {
	type plain Batch
	return json.Marshal(struct {
		plain
		CreatedAt   *string `json:"created_at"`
		CompletedAt *string `json:"completed_at"`
	}{plain(b), fmtTime(b.CreatedAt), fmtTime(b.CompletedAt)})
}

func fmtTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(jobs.TimeFormat)
	return &s
}

// LoadBatch reads a batch. A batch whose submit has not finished (no job
// count yet) is not found.
func LoadBatch(ctx context.Context, rdb redis.Cmdable, id string) (*Batch, error) {
	m, err := rdb.HGetAll(ctx, jobs.BatchKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get batch %s: %w", id, err)
	}
	return decodeBatch(id, m)
}

// decodeBatch reads a batch's hash.
func decodeBatch(id string, m map[string]string) (*Batch, error) {
	if m[FieldJobs] == "" || m[FieldTenant] == "" {
		return nil, ErrBatchNotFound
	}
	n := func(k string) int64 {
		v, _ := strconv.ParseInt(m[k], 10, 64)
		return v
	}
	b := &Batch{
		ID: id, Tenant: m[FieldTenant], Model: m[FieldModel], Tier: m[FieldTier], Jobs: n(FieldJobs),
		Counts: Counts{
			Queued: n(string(jobs.Queued)) + n(string(jobs.Scheduled)), Running: n(string(jobs.Running)),
			Succeeded: n(string(jobs.Succeeded)), Failed: n(string(jobs.Failed)),
			Canceled: n(string(jobs.Canceled)), Expired: n(string(jobs.Expired)),
		},
		MetDeadline: n(FieldMetDeadline),
		CreatedAt:   fromMS(m[FieldCreatedAt]), CompletedAt: fromMS(m[FieldCompletedAt]),
		WebhookURL: m[FieldWebhookURL], JobWebhooks: m[FieldJobWebhooks] == "1",
		StatusURL: "/v1/batches/" + id, ResultsURL: "/v1/batches/" + id + "/results",
	}
	if v := m[FieldMetadata]; v != "" {
		b.Metadata = json.RawMessage(v)
	}
	ended := b.Counts.Succeeded + b.Counts.Failed + b.Counts.Canceled + b.Counts.Expired
	// Done once the completion is recorded, not as soon as the counts
	// say every job ended: only then is met_deadline exact (settle).
	b.Done = ended >= b.Jobs && !b.CompletedAt.IsZero()
	b.Status = "in_progress"
	if b.Done {
		b.Status = "completed"
	}
	return b, nil
}

func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// MS renders a time as the batch hash stores it (Unix milliseconds).
func MS(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// settle counts finished jobs of a batch that met their deadline and
// reports whether every job of the batch has ended while its completion
// is not recorded yet. KEYS: the batch hash, its job list. ARGV: how many
// of the jobs met their deadline, retention (ms).
//
// The met_deadline count kept here is live but may lag (a job's end and
// its notice are two steps, and a job may end without a notice); the
// caller that completes the batch recounts it from the job records and
// records it with completed_at in one step (complete), so that a batch
// that reads done has its exact count; no notice counts after that.
var settle = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local h = redis.call('HMGET', KEYS[1], 'jobs', 'succeeded', 'failed', 'canceled', 'expired', 'completed_at')
if h[6] then return 0 end
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBY', KEYS[1], 'met_deadline', ARGV[1]) end
if not h[1] then return 0 end
local ended = (tonumber(h[2]) or 0) + (tonumber(h[3]) or 0) + (tonumber(h[4]) or 0) + (tonumber(h[5]) or 0)
if ended < tonumber(h[1]) then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
`)

// complete records a batch's completion once: its exact met_deadline
// count and completed_at together, unless another settler recorded it
// first. KEYS: the batch hash. ARGV: the count, now (ms). It returns 1
// for the one that recorded it.
var complete = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'completed_at') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'met_deadline', ARGV[1], 'completed_at', ARGV[2])
return 1
`)

// countMet counts the batch's jobs that met their deadline, from their
// records, a page at a time.
func countMet(ctx context.Context, rdb redis.Cmdable, store *jobs.Store, batchID string) (int64, error) {
	const page = 500
	var met int64
	for start := int64(0); ; start += page {
		ids, err := rdb.LRange(ctx, JobsKey(batchID), start, start+page-1).Result()
		if err != nil {
			return 0, fmt.Errorf("batch %s jobs: %w", batchID, err)
		}
		recs, err := store.GetMany(ctx, ids)
		if err != nil {
			return 0, err
		}
		for _, j := range recs {
			if j != nil && j.MetDeadline != nil && *j.MetDeadline {
				met++
			}
		}
		if len(ids) < page {
			return met, nil
		}
	}
}
