package notify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/blob"
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
	// Blob, NATS and MaxInlineResult serve the end of a document
	// (document.go): its pages' stored results are read from S3, a large
	// result is stored there, and its end is announced. Without Blob a
	// document's result stays inline, and one whose pages' results were
	// stored is left to a teller that has it (the outbox retries).
	Blob            *blob.Store
	NATS            *nats.Conn
	MaxInlineResult int64
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
// once per batch with the jobs it ended, after their ends are durable.
func (n *Notifier) OnFinish(ctx context.Context, ended []jobs.Ended) {
	if _, err := n.tell(ctx, ended); err != nil {
		n.log.Error("notify: jobs ended, but not all their webhooks and batches could be recorded yet (the upkeep retries)",
			"jobs", len(ended), "err", err)
	}
}

// Finished handles one job that reached the terminal state to: it
// enqueues the job's webhook, if it has one, and settles its batch.
func (n *Notifier) Finished(ctx context.Context, id string, to jobs.State) error {
	_, err := n.tell(ctx, []jobs.Ended{{Message: jobs.Message{ID: id}, State: to}})
	return err
}

// tell records what the ends of jobs must tell (each job's own webhook,
// and one settle per batch touched, with the count of its jobs that met
// their deadline), then takes the ends it told out of the outbox; what
// failed stays there, for Reconcile. What an end must tell comes from its
// message's hints, so that the common job (no webhook of its own) costs no
// round trip here; a job with a webhook is read (the event carries it), all
// in one pipelined round trip, and so is an end without hints (a message
// from before them, a cancel, the outbox), which also takes its batch, its
// met deadline and, when State is empty, its state from the record. It
// returns how many ends it took out of the outbox.
func (n *Notifier) tell(ctx context.Context, ended []jobs.Ended) (int, error) {
	var errs []error
	failed := map[string]bool{} // ends that could not be told
	recs := make([]*jobs.Job, len(ended))
	var ids []string
	var at []int
	for i, e := range ended {
		if hint := e.Message.Notify; hint == nil || hint.Webhook {
			ids, at = append(ids, e.Message.ID), append(at, i)
		}
	}
	if len(ids) > 0 {
		got, err := n.cfg.Store.GetMany(ctx, ids)
		if err != nil {
			errs = append(errs, err)
			for _, id := range ids {
				failed[id] = true
			}
		} else {
			for k, j := range got {
				recs[at[k]] = j
			}
		}
	}
	met := map[string]int64{}        // by batch: the ended jobs that met their deadline
	byBatch := map[string][]string{} // by batch: its ended jobs
	byDoc := map[string][]string{}   // by document: its ended pages
	var done []string
	failures := map[string][]string{} // by tenant: the failed jobs, for the console
	for i, e := range ended {
		id, j := e.Message.ID, recs[i]
		if failed[id] && e.Message.Notify == nil {
			continue // its record could not be read: nothing is known
		}
		state, metDeadline, batch := e.State, e.MetDeadline, ""
		if hint := e.Message.Notify; hint != nil {
			batch = hint.Batch
		} else if j != nil {
			batch, metDeadline = j.BatchID, j.MetDeadline != nil && *j.MetDeadline
			if state == "" {
				state = j.Status
			}
		}
		done = append(done, id)
		if state == jobs.Failed {
			tenant := e.Message.Tenant
			if j != nil {
				tenant = j.Tenant
			}
			if tenant != "" {
				failures[tenant] = append(failures[tenant], id)
			}
		}
		typ := eventType(state)
		if typ == "" || (e.Message.Notify == nil && j == nil) {
			continue // expired, or gone: nothing left to tell
		}
		if j != nil && j.WebhookURL != "" {
			if err := n.enqueue(ctx, j.Tenant, j.WebhookURL, j.ID, typ, j); err != nil {
				errs = append(errs, err)
				failed[id] = true
			}
		}
		doc, _, isPage := jobs.PageOf(id)
		switch {
		case isPage:
			// A page's batch is its document, which its end may end.
			byDoc[doc] = append(byDoc[doc], id)
		case batch != "":
			met[batch] += b2i(metDeadline)
			byBatch[batch] = append(byBatch[batch], id)
		}
		if tenant := cmp.Or(e.Message.Tenant, tenantOf(j)); !isPage && tenant != "" && (state == jobs.Canceled || state == jobs.Failed) {
			// A document canceled, or failed otherwise than by a page
			// (max_attempts while it fanned out), cancels its pages not
			// yet run: none runs for a document that has ended.
			if err := n.cancelPages(ctx, id, tenant); err != nil {
				errs = append(errs, err)
				failed[id] = true
			}
		}
	}
	if err := recordFailures(ctx, n.cfg.Redis, failures, time.Now()); err != nil {
		// Only the console's list of recent failures misses them.
		n.log.Warn("notify: recent failures not indexed", "err", err)
	}
	for batch, count := range met {
		if err := n.settle(ctx, batch, count); err != nil {
			errs = append(errs, err)
			for _, id := range byBatch[batch] {
				failed[id] = true
			}
		}
	}
	for doc, ids := range byDoc {
		if err := n.endDocument(ctx, doc); err != nil {
			errs = append(errs, err)
			for _, id := range ids {
				failed[id] = true
			}
		}
	}
	told := done[:0]
	for _, id := range done {
		if !failed[id] {
			told = append(told, id)
		}
	}
	if err := n.cfg.Store.Told(ctx, told...); err != nil {
		// They will be told again, harmlessly.
		return 0, errors.Join(append(errs, err)...)
	}
	return len(told), errors.Join(errs...)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
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
		met, keep.Milliseconds()).Int()
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
	// Settlers racing at the end each recount; one records it.
	first, err := complete.Run(ctx, n.cfg.Redis, []string{jobs.BatchKey(batchID)}, metCount, MS(now)).Int()
	if err != nil {
		return fmt.Errorf("complete batch %s: %w", batchID, err)
	}
	if first != 1 {
		return nil
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
// and returns how many it took out of the outbox.
func (n *Notifier) Reconcile(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for ctx.Err() == nil {
		ids, err := n.cfg.Store.EndedBefore(ctx, cutoff, 500)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		ended := make([]jobs.Ended, len(ids))
		for i, id := range ids {
			ended[i] = jobs.Ended{Message: jobs.Message{ID: id}}
		}
		told, err := n.tell(ctx, ended)
		total += told
		if told == 0 {
			return total, errors.Join(errors.New("notify: reconcile made no progress"), err)
		}
		if err != nil {
			n.log.Error("notify: reconcile", "err", err)
		}
	}
	return total, ctx.Err()
}
