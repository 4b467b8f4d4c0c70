package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// defaultMaxInlineResult is Config.MaxInlineResult's default, the
// worker's INFERQ_MAX_INLINE_RESULT default.
const defaultMaxInlineResult = 64 << 10

// endDocument ends a document once its pages say how: when every page has
// ended (its result is every page's, in order), or as soon as one page
// has failed (the document fails with that page named, and its pages not
// yet run are canceled). It is told every page end, by whoever ended the
// page; the document's transition refuses a second finisher, so however
// many tell it at once the document ends once, and a teller that fails
// leaves its page end in the outbox to be told again.
func (n *Notifier) endDocument(ctx context.Context, doc string) error {
	c, err := n.cfg.Store.DocumentPages(ctx, doc)
	if err != nil {
		return err
	}
	if c.Pages == 0 || (c.Failed == 0 && c.Ended() < c.Pages) {
		return nil
	}
	d, err := n.cfg.Store.Get(ctx, doc)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status != jobs.Running {
		return nil // canceled, or ended by another teller
	}
	ids := make([]string, c.Pages)
	for i := range ids {
		ids[i] = jobs.PageID(doc, i+1)
	}
	pages, err := n.cfg.Store.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	to, u, err := n.assemble(ctx, d, pages)
	if err != nil {
		return err
	}
	err = n.cfg.Store.Finish(ctx, d, to, u)
	if errors.Is(err, jobs.ErrIllegal) || errors.Is(err, jobs.ErrNotFound) {
		return nil // another teller ended it
	}
	if err != nil {
		return err
	}
	now := time.Now()
	if n.cfg.NATS != nil {
		queue.PublishEvent(n.cfg.NATS, d.Tenant, doc, to, now)
	}
	n.log.Info("document ended", "job", doc, "tenant", d.Tenant, "status", to, "pages", c.Pages)
	// Its webhook, its batch, and (failed or canceled) its pages not yet
	// run canceled.
	_, err = n.tell(ctx, []jobs.Ended{{Message: jobs.Message{ID: doc, Tenant: d.Tenant}, State: to}})
	if to == jobs.Succeeded { // (cancelPages does it otherwise)
		err = errors.Join(err, n.cfg.Store.KeepDocumentCounts(ctx, doc))
	}
	return err
}

// assemble makes a document's outcome of its pages' records: failed with
// the first failed page named, canceled when a page was canceled, else
// succeeded with every page's result in order (stored in S3 when over
// the inline limit, as a worker stores a job's).
func (n *Notifier) assemble(ctx context.Context, d *jobs.Job, pages []*jobs.Job) (jobs.State, jobs.Update, error) {
	u := jobs.Update{FinishedAt: time.Now()}
	results := make([]documents.PageResult, len(pages))
	for i, p := range pages {
		switch {
		case p == nil:
			return "", u, fmt.Errorf("document %s: page %d has no record", d.ID, i+1)
		case p.Status == jobs.Failed:
			u.Error = &jobs.Error{Code: "page_failed", Message: fmt.Sprintf("page %d failed", i+1)}
			if p.Error != nil {
				// (A renderer's error names its page already.)
				named := fmt.Sprintf("page %d: ", i+1)
				u.Error = &jobs.Error{Code: p.Error.Code, Message: named + strings.TrimPrefix(p.Error.Message, named)}
			}
			return jobs.Failed, u, nil
		case p.Status == jobs.Canceled:
			return jobs.Canceled, u, nil
		case p.Status != jobs.Succeeded:
			// Ended otherwise (expired): its result is gone.
			return jobs.Failed, jobs.Update{FinishedAt: u.FinishedAt, Error: &jobs.Error{Code: "page_failed", Message: fmt.Sprintf("page %d %s", i+1, p.Status)}}, nil
		}
		raw, err := n.pageResult(ctx, p)
		if err != nil {
			return "", u, err
		}
		if err := json.Unmarshal(raw, &results[i]); err != nil {
			return "", u, fmt.Errorf("document %s page %d: %w", d.ID, i+1, err)
		}
		u.ModelVersion = p.ModelVersion
	}
	b, err := json.Marshal(documents.Assemble(results))
	if err != nil {
		return "", u, err
	}
	limit := n.cfg.MaxInlineResult
	if limit <= 0 {
		limit = defaultMaxInlineResult
	}
	if int64(len(b)) > limit && n.cfg.Blob != nil {
		if _, err := n.cfg.Blob.Put(ctx, blob.ResultKey(d.Tenant, d.ID), bytes.NewReader(b), int64(len(b)), "application/json"); err != nil {
			return "", u, err
		}
		b, _ = json.Marshal(map[string]any{"stored": true, "bytes": len(b), "output_url": "/v1/jobs/" + d.ID + "/output"})
	}
	u.Result = b
	return jobs.Succeeded, u, nil
}

// pageResult is a page's result, read from S3 when its worker stored it
// there.
func (n *Notifier) pageResult(ctx context.Context, p *jobs.Job) (json.RawMessage, error) {
	var stored struct {
		Stored bool `json:"stored"`
	}
	if json.Unmarshal(p.Result, &stored) != nil || !stored.Stored {
		return p.Result, nil
	}
	if n.cfg.Blob == nil {
		return nil, fmt.Errorf("page %s: its result is in S3, and this process has no S3", p.ID)
	}
	return n.cfg.Blob.Get(ctx, blob.ResultKey(p.Tenant, p.ID), 1<<30)
}

// cancelPages cancels a document's pages that have not ended (none for
// a job that never fanned out: one read); their ends tell nothing (no
// webhook, and the document has ended), so they leave the outbox at once.
func (n *Notifier) cancelPages(ctx context.Context, doc, tenant string) error {
	ids, err := n.cfg.Store.CancelPages(ctx, doc, tenant)
	if len(ids) > 0 && n.cfg.NATS != nil {
		now := time.Now()
		for _, id := range ids {
			// The scheduler drops a canceled page it holds.
			queue.PublishEvent(n.cfg.NATS, tenant, id, jobs.Canceled, now)
		}
	}
	return errors.Join(err, n.cfg.Store.Told(ctx, ids...))
}

func tenantOf(j *jobs.Job) string {
	if j == nil {
		return ""
	}
	return j.Tenant
}
