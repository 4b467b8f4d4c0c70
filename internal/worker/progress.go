package worker

import (
	"context"
	"time"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// pagesProgress brings the progress of the documents whose pages this
// batch ended up to date (one round trip for the batch) and announces it
// to SSE watchers. Counts only grow, so workers writing in any order
// leave the newest; a document that ended is left alone.
func (w *Worker) pagesProgress(ctx context.Context, ended []jobs.Ended) {
	tenant := map[string]string{}
	var docs []string
	for _, e := range ended {
		if doc, _, ok := jobs.PageOf(e.Message.ID); ok {
			if _, seen := tenant[doc]; !seen {
				docs = append(docs, doc)
			}
			tenant[doc] = e.Message.Tenant
		}
	}
	if len(docs) == 0 {
		return
	}
	got, err := w.cfg.Store.DocumentProgress(ctx, docs)
	if err != nil {
		w.log.Warn("record document progress", "documents", len(docs), "err", err)
		return
	}
	now := time.Now()
	for doc, p := range got {
		queue.PublishProgress(w.cfg.NATS, tenant[doc], doc, p, now)
	}
}
