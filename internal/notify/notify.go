package notify

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/webhook"
)

// Config configures a Notifier.
type Config struct {
	// Redis holds job records, batches and the asynq queue.
	Redis redis.UniversalClient
	// Store reads job records (the ended job's webhook URL and batch).
	Store *jobs.Store
	// Retention is the jobs' result retention (INFERQ_RESULT_TTL). A
	// completed batch is kept as long as its jobs' records:
	// Retention + jobs.ExpiredGrace after it completed. 0 keeps it.
	Retention time.Duration
	Log       *slog.Logger
}

// Notifier enqueues the webhooks of ended jobs and completed batches.
type Notifier struct {
	cfg Config
	q   *asynq.Client
	log *slog.Logger
}

// deliveredRetention is how long asynq keeps a delivered event, so that a
// second enqueue of the same event within it is refused by its task id.
const deliveredRetention = time.Hour

// New returns a Notifier on cfg.Redis (the connection is shared, not
// owned).
func New(cfg Config) *Notifier {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{cfg: cfg, q: asynq.NewClientFromRedisClient(cfg.Redis), log: log}
}

// OnFinish has the shape of worker.Config.OnFinish: the worker calls it
// once for each job it ended, after the end is durable.
func (n *Notifier) OnFinish(ctx context.Context, m jobs.Message, to jobs.State) {
	if err := n.Finished(ctx, m.ID, to); err != nil {
		n.log.Error("notify: job ended, but its webhook or batch could not be recorded",
			"job", m.ID, "tenant", m.Tenant, "model", m.Model, "tier", m.Tier, "status", to, "err", err)
	}
}

// Finished handles one job that reached the terminal state to: it
// enqueues the job's webhook, if it has one, and settles its batch.
func (n *Notifier) Finished(ctx context.Context, id string, to jobs.State) error {
	typ := eventType(to)
	if typ == "" {
		return nil
	}
	j, err := n.cfg.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	var errs []error
	if j.WebhookURL != "" {
		errs = append(errs, n.enqueue(ctx, j.Tenant, j.WebhookURL, j.ID, typ, j))
	}
	if j.BatchID != "" {
		errs = append(errs, n.settle(ctx, j.BatchID, j.MetDeadline != nil && *j.MetDeadline))
	}
	return errors.Join(errs...)
}

// CheckBatch fires batch.completed if every job of the batch has ended
// and nobody fired it yet. The submit calls it after it set the job count.
func (n *Notifier) CheckBatch(ctx context.Context, batchID string) error {
	return n.settle(ctx, batchID, false)
}

func (n *Notifier) settle(ctx context.Context, batchID string, met bool) error {
	now := time.Now()
	keep := time.Duration(0)
	if n.cfg.Retention > 0 {
		// Its jobs turn expired (moving the batch's counts) up to
		// Retention after it completed, and their records stay a grace
		// longer: the batch outlives both, so no late count recreates it.
		keep = n.cfg.Retention + jobs.ExpiredGrace
	}
	done, err := settle.Run(ctx, n.cfg.Redis, []string{jobs.BatchKey(batchID), JobsKey(batchID)},
		b2s(met), MS(now), keep.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("settle batch %s: %w", batchID, err)
	}
	if done != 1 {
		return nil
	}
	metCount, err := countMet(ctx, n.cfg.Redis, n.cfg.Store, batchID)
	if err != nil {
		return err
	}
	if err := n.cfg.Redis.HSet(ctx, jobs.BatchKey(batchID), FieldMetDeadline, metCount).Err(); err != nil {
		return fmt.Errorf("batch %s: %w", batchID, err)
	}
	b, err := LoadBatch(ctx, n.cfg.Redis, batchID)
	if err != nil {
		return err
	}
	n.log.Info("batch completed", "batch", batchID, "tenant", b.Tenant, "model", b.Model, "jobs", b.Jobs,
		"succeeded", b.Counts.Succeeded, "failed", b.Counts.Failed, "canceled", b.Counts.Canceled)
	if b.WebhookURL == "" {
		return nil
	}
	return n.enqueue(ctx, b.Tenant, b.WebhookURL, batchID, webhook.EventBatchCompleted, b)
}

// enqueue builds one event and hands it to asynq under its stable id.
func (n *Notifier) enqueue(ctx context.Context, tenant, url, subject, typ string, data any) error {
	_, body, err := webhook.NewEvent(typ, data, time.Now())
	if err != nil {
		return err
	}
	d := webhook.Delivery{ID: EventID(subject, typ), Type: typ, Tenant: tenant, URL: url, Body: body}
	_, err = n.q.EnqueueContext(ctx, webhook.NewTask(d, asynq.Retention(deliveredRetention)))
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		n.log.Debug("webhook already enqueued", "webhook_id", d.ID, "event", typ, "subject", subject)
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue webhook %s for %s: %w", typ, subject, err)
	}
	return nil
}

// EventID is the webhook-id of the event typ about a job or batch: stable,
// so that every enqueue of the same event names the same delivery.
func EventID(subject, typ string) string {
	h := sha256.Sum256([]byte(subject + "\x00" + typ))
	return "msg_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:16])
}

func eventType(s jobs.State) string {
	switch s {
	case jobs.Succeeded:
		return webhook.EventJobSucceeded
	case jobs.Failed:
		return webhook.EventJobFailed
	case jobs.Canceled:
		return webhook.EventJobCanceled
	}
	return ""
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
