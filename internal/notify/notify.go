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
// once per batch with the jobs it ended, after their ends are durable. What
// each end must tell comes from its message, so that the common job (no
// webhook of its own) costs no round trip here: the jobs with a webhook are
// read in one pipelined round trip and their webhooks enqueued, and each
// batch touched is settled once, with the count of its jobs that met their
// deadline. A message without these hints (older than them) is handled from
// its record.
func (n *Notifier) OnFinish(ctx context.Context, ended []jobs.Ended) {
	var read []jobs.Ended
	met := map[string]int64{}        // by batch: the ended jobs that met their deadline
	byBatch := map[string][]string{} // by batch: its ended jobs
	failed := map[string]bool{}      // jobs whose end could not be told
	var told []string
	for _, e := range ended {
		if eventType(e.State) == "" {
			continue
		}
		hint := e.Message.Notify
		if hint == nil || hint.Webhook {
			read = append(read, e)
		}
		if hint != nil && hint.Batch != "" {
			met[hint.Batch] += b2i(e.MetDeadline)
			byBatch[hint.Batch] = append(byBatch[hint.Batch], e.Message.ID)
		}
		told = append(told, e.Message.ID)
	}
	if len(read) > 0 {
		ids := make([]string, len(read))
		for i, e := range read {
			ids[i] = e.Message.ID
		}
		recs, err := n.cfg.Store.GetMany(ctx, ids)
		if err != nil {
			n.log.Error("notify: jobs ended, but their webhooks could not be recorded yet", "jobs", len(ids), "err", err)
			for _, id := range ids {
				failed[id] = true
			}
		}
		for i, j := range recs {
			e := read[i]
			if j == nil {
				continue // expired or gone meanwhile
			}
			if j.WebhookURL != "" {
				if err := n.enqueue(ctx, j.Tenant, j.WebhookURL, j.ID, eventType(e.State), j); err != nil {
					n.log.Error("notify: job ended, but its webhook could not be recorded yet",
						"job", j.ID, "tenant", j.Tenant, "model", j.Model, "tier", j.Tier, "status", e.State, "err", err)
					failed[j.ID] = true
				}
			}
			if e.Message.Notify == nil && j.BatchID != "" {
				met[j.BatchID] += b2i(e.MetDeadline)
				byBatch[j.BatchID] = append(byBatch[j.BatchID], j.ID)
			}
		}
	}
	for batch, count := range met {
		if err := n.settle(ctx, batch, count); err != nil {
			n.log.Error("notify: jobs ended, but their batch could not be settled yet", "batch", batch, "err", err)
			for _, id := range byBatch[batch] {
				failed[id] = true
			}
		}
	}
	// What failed stays in the outbox, for the upkeep's Reconcile.
	done := told[:0]
	for _, id := range told {
		if !failed[id] {
			done = append(done, id)
		}
	}
	if err := n.cfg.Store.Told(ctx, done...); err != nil {
		n.log.Warn("notify: ends told, but not marked so (they will be told again, harmlessly)", "jobs", len(done), "err", err)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
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
		errs = append(errs, n.settle(ctx, j.BatchID, b2i(j.MetDeadline != nil && *j.MetDeadline)))
	}
	if err := errors.Join(errs...); err != nil {
		return err // it stays in the outbox, for Reconcile
	}
	return n.cfg.Store.Told(ctx, id)
}

// CheckBatch fires batch.completed if every job of the batch has ended
// and nobody fired it yet. The submit calls it after it set the job count.
func (n *Notifier) CheckBatch(ctx context.Context, batchID string) error {
	return n.settle(ctx, batchID, 0)
}

// settle counts finished jobs of a batch that met their deadline and
// fires batch.completed if the batch has just completed.
func (n *Notifier) settle(ctx context.Context, batchID string, met int64) error {
	now := time.Now()
	keep := time.Duration(0)
	if n.cfg.Retention > 0 {
		// Its jobs turn expired (moving the batch's counts) up to
		// Retention after it completed, and their records stay a grace
		// longer: the batch outlives both, so no late count recreates it.
		keep = n.cfg.Retention + jobs.ExpiredGrace
	}
	done, err := settle.Run(ctx, n.cfg.Redis, []string{jobs.BatchKey(batchID), JobsKey(batchID)},
		met, MS(now), keep.Milliseconds()).Int()
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

// ReconcileAfter is how old an untold end must be before the upkeep
// tells it: its finisher normally tells it within milliseconds.
const ReconcileAfter = 30 * time.Second

// Reconcile tells the ends that their finishers did not: the transition
// that ended a job put it in the outbox atomically, so an end is found
// here even when its finisher crashed, or lost the reply to its
// transition and took the job for finished by another. It works through
// the ends before cutoff a page at a time until none is left or ctx ends,
// and returns how many it told.
func (n *Notifier) Reconcile(ctx context.Context, cutoff time.Time) (int, error) {
	told := 0
	for ctx.Err() == nil {
		ids, err := n.cfg.Store.EndedBefore(ctx, cutoff, 500)
		if err != nil || len(ids) == 0 {
			return told, err
		}
		recs, err := n.cfg.Store.GetMany(ctx, ids)
		if err != nil {
			return told, err
		}
		progress := false
		for i, j := range recs {
			if j == nil || eventType(j.Status) == "" {
				// Gone, or expired since: nothing left to tell.
				if err := n.cfg.Store.Told(ctx, ids[i]); err != nil {
					return told, err
				}
				progress = true
				continue
			}
			if err := n.Finished(ctx, j.ID, j.Status); err != nil {
				n.log.Error("notify: reconcile", "job", j.ID, "err", err)
				continue
			}
			told++
			progress = true
		}
		if !progress {
			return told, errors.New("notify: reconcile made no progress")
		}
	}
	return told, ctx.Err()
}
