// Package notify is what happens when jobs end: it enqueues the signed
// webhooks of finished jobs and completed batches (asynq tasks that package
// webhook delivers), notices the moment a batch completes, and builds the
// delivery server the producers run. It also owns the batch record that
// both the API and the completion check read.
//
// Decisions:
//
//   - Enqueueing happens where a job ends: the worker's OnFinish
//     (job.succeeded, job.failed, once per worker batch) and the API's
//     cancel (job.canceled), after the terminal state is durable. The
//     transition that ends a job also puts it in an outbox; what a finisher
//     did not tell, the upkeep tells (Reconcile), so an end is told even
//     when its finisher crashed or lost the reply to its transition. What
//     an end must tell comes from the message's hints (its own webhook, its
//     batch): a job without a webhook costs no record read. Delivery runs
//     in the producers, which hold the tenants file and so the webhook
//     secrets; task payloads carry no secret.
//   - The webhook-id is derived from the subject and the event type
//     (sha256 of "<job or batch id>\x00<type>"), not drawn at random, and is
//     the asynq task id: an event enqueued twice (a redelivered job, a
//     retried OnFinish) is one task while asynq holds it, and delivered
//     tasks are kept for an hour (Retention) so a late duplicate enqueue is
//     still refused; past that, receivers deduplicate on webhook-id.
//   - Batch completion fires once: the ended jobs of a batch (one
//     worker batch's at a time) run one Lua script that, when succeeded, failed, canceled and expired add up
//     to the batch's job count, sets completed_at (HSETNX semantics); only
//     the caller that set it enqueues batch.completed. The submit sets the
//     job count last and runs the same check, so a batch whose jobs all
//     ended before the submit answered still completes. met_deadline is
//     counted live by the same script and recounted from the job records
//     by the completing caller, so the event carries the exact figure.
//     Completion starts the batch's retention clock: its keys expire
//     Config.Retention + jobs.ExpiredGrace later, with its jobs' records.
//   - Jobs of a batch send per-job events only when the batch asked for
//     them (job_webhooks); otherwise the batch's webhook_url gets the one
//     batch.completed.
//   - Retry schedule: the Standard Webhooks schedule of package webhook,
//     unless DeliveryConfig.Schedule replaces it (INFERQ_WEBHOOK_RETRY_SCHEDULE,
//     for tests and staging): then the n-th retry waits Schedule[n] and a
//     delivery that failed len(Schedule)+1 times is archived.
package notify
