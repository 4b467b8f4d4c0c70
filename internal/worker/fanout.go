package worker

import (
	"context"
	"errors"
	"time"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models"
	"github.com/inferq/inferq/internal/queue"
)

// fanOut turns each whole document among the batch's jobs into page jobs,
// so that its pages are scheduled and micro-batched like any job, on
// every worker at once. For each document it:
//
//  1. moves the document to running (a canceled one is set aside);
//  2. opens it and counts its pages, rendering none: an encrypted,
//     corrupt or over-long document fails here with its code;
//  3. records the page count and makes the page records not made yet
//     (jobs.Store.CreatePages: a redelivery after a crash anywhere in
//     here makes only the missing ones and counts none twice, and none
//     once the document was canceled);
//  4. publishes every page to JOBS with its id as Nats-Msg-Id: a page
//     published before the crash is dropped by JetStream's duplicate
//     window, or by the scheduler when its record is no longer queued;
//  5. takes the document out of the reaper's index (it runs as long as
//     its pages, and its input may be inline, which the reaper cannot
//     give again) and acks its message.
//
// The document's message stays unacked until step 5, so a worker killed
// before it loses nothing: the message is redelivered and the steps run
// again. The document ends when its last page ends (notify).
func (l *modelLoop) fanOut(ctx context.Context, m *models.Model, items []*item) {
	for _, it := range items {
		if it.done || it.out.Err != nil || it.input == nil {
			continue
		}
		n, err := m.DocumentPages(models.Input{Data: it.input, ContentType: it.job.ContentType})
		if errors.Is(err, models.ErrNotDocument) {
			continue
		}
		if rerr := l.w.retry(ctx, "redis", func() error { return l.markRunning(ctx, []*item{it}, m.Manifest.Version) }); rerr != nil {
			l.handBack([]*item{it})
			it.done = true
			continue
		}
		if it.done {
			continue // canceled or ended: markRunning acked it
		}
		var ie *models.InputError
		switch {
		case errors.As(err, &ie):
			l.w.fail(it, ie.Code, ie.Message) // recorded with the batch
			continue
		case err != nil:
			l.w.fail(it, "invalid_input", err.Error())
			continue
		}
		pages := jobs.Pages(it.job, n, func(i int) string { return models.PageContentType(it.job.ContentType, i) })
		err = l.w.retry(ctx, "redis", func() error { return l.w.makePages(ctx, it.job, pages) })
		if err == nil {
			err = l.w.retry(ctx, "nats", func() error { return transientErr(queue.Submit(ctx, l.w.cfg.JS, pages, pagePublishWait)) })
		}
		if err == nil {
			err = l.w.retry(ctx, "redis", func() error { return transientErr(l.w.cfg.Store.Forget(ctx, it.job.ID)) })
		}
		if err != nil && !errors.Is(err, jobs.ErrNotRunning) {
			l.handBack([]*item{it})
			it.done = true
			continue
		}
		it.done = true
		if err := it.msg.Ack(); err != nil {
			l.w.log.Warn("ack document", "job", it.job.ID, "err", err)
		}
		if it.job.InputKey != "" {
			l.w.kept.keep(it.job.InputKey, it.input) // for its first pages
		}
		l.w.log.Info("document fanned out", "job", it.job.ID, "tenant", it.job.Tenant, "pages", n, "ended_meanwhile", err != nil)
	}
}

// pagePublishWait bounds the wait for JetStream's acknowledgements of a
// document's pages.
const pagePublishWait = 10 * time.Second

// makePages records document doc's page count and makes its page
// records not made yet (fanOut's step 3); ErrNotRunning: the document
// ended meanwhile.
func (w *Worker) makePages(ctx context.Context, doc jobs.Message, pages []*jobs.Job) error {
	_, err := w.cfg.Store.CreatePages(ctx, &jobs.Job{ID: doc.ID, Tenant: doc.Tenant}, pages)
	if errors.Is(err, jobs.ErrNotRunning) {
		return err
	}
	return transientErr(err)
}

// transientErr marks err, if any, a fault of a backing service (retried).
func transientErr(err error) error {
	if err == nil {
		return nil
	}
	return transient{err}
}
