package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/tenants"
)

const (
	// recordWorkers bounds the job records a cancel moves at once.
	recordWorkers = 8
	// resultsPage is how many jobs one results page reads from Redis.
	resultsPage = 500
)

// parallel runs f(0..n-1) on up to workers goroutines and returns the
// first error; after one, the rest are skipped.
func parallel(n, workers int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

var errBatchNotFound = errf(http.StatusNotFound, "not_found", "no such batch")

// loadBatch reads a batch and hides it from any tenant but its own.
func (s *Server) loadBatch(ctx context.Context, id string, t *tenants.Tenant) (*notify.Batch, error) {
	if !validID(id) {
		return nil, errBatchNotFound
	}
	b, err := notify.LoadBatch(ctx, s.cfg.Store.Redis(), id)
	if errors.Is(err, notify.ErrBatchNotFound) || (err == nil && b.Tenant != t.Name) {
		return nil, errBatchNotFound
	}
	return b, err
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	b, err := s.loadBatch(r.Context(), r.PathValue("id"), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// cancelBatch cancels every job of the batch that has not ended (each
// as POST /v1/jobs/<id>/cancel would, webhooks included) and answers the
// batch; 409 when every job had already ended.
func (s *Server) cancelBatch(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	ctx := r.Context()
	b, err := s.loadBatch(ctx, r.PathValue("id"), t)
	if err != nil {
		return err
	}
	if b.Done {
		return errf(http.StatusConflict, "already_finished", "every job of the batch has already ended")
	}
	rdb := s.cfg.Store.Redis()
	now := time.Now()
	for start := int64(0); ; start += resultsPage {
		ids, err := rdb.LRange(ctx, notify.JobsKey(b.ID), start, start+resultsPage-1).Result()
		if err != nil {
			return err
		}
		err = parallel(len(ids), recordWorkers, func(i int) error {
			_, err := s.cfg.Store.Transition(ctx, ids[i], t.Name, jobs.Canceled, jobs.Update{FinishedAt: now})
			var te *jobs.TransitionError
			switch {
			case errors.As(err, &te), errors.Is(err, jobs.ErrNotFound):
				return nil // ended meanwhile, or expired
			case err != nil:
				return err
			}
			queue.PublishEvent(s.cfg.NATS, t.Name, ids[i], jobs.Canceled, now)
			if s.cfg.Notifier != nil {
				if err := s.cfg.Notifier.Finished(context.WithoutCancel(ctx), ids[i], jobs.Canceled); err != nil {
					s.log.Error("cancel: webhook or batch not recorded", "job", ids[i], "batch", b.ID, "err", err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) < resultsPage {
			break
		}
	}
	if s.cfg.Notifier != nil {
		// A job that a worker ended while this ran may have been told
		// after the last of this cancel's settles: complete the batch
		// here, so that the answer is the done batch.
		if err := s.cfg.Notifier.CheckBatch(context.WithoutCancel(ctx), b.ID); err != nil {
			s.log.Error("cancel: batch completion not recorded", "batch", b.ID, "err", err)
		}
	}
	if b, err = s.loadBatch(ctx, b.ID, t); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// batchResults streams the batch's jobs as NDJSON, in submit order, a page
// at a time, so that a batch of any size is never held in memory. A job
// whose record has expired is shown as {"id", "status": "expired"}.
// ?status= keeps only jobs in that state.
func (s *Server) batchResults(w http.ResponseWriter, r *http.Request, t *tenants.Tenant) error {
	ctx := r.Context()
	b, err := s.loadBatch(ctx, r.PathValue("id"), t)
	if err != nil {
		return err
	}
	only := jobs.State(r.URL.Query().Get("status"))
	rdb := s.cfg.Store.Redis()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Batch-Jobs", strconv.FormatInt(b.Jobs, 10))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for start := int64(0); ; start += resultsPage {
		ids, err := rdb.LRange(ctx, notify.JobsKey(b.ID), start, start+resultsPage-1).Result()
		if err == nil && len(ids) == 0 {
			return nil
		}
		var recs []*jobs.Job
		if err == nil {
			recs, err = s.cfg.Store.GetMany(ctx, ids)
		}
		if err != nil {
			// The status line is gone; break the stream so that the
			// client sees it end early rather than take it for whole.
			s.log.Error("batch results broken off", "batch", b.ID, "tenant", t.Name, "at", start, "err", err)
			panic(http.ErrAbortHandler)
		}
		for i, j := range recs {
			if j == nil {
				j = &jobs.Job{ID: ids[i], Status: jobs.Expired, Model: b.Model, Tier: b.Tier, BatchID: b.ID}
			}
			if only != "" && j.Status != only {
				continue
			}
			if err := enc.Encode(j); err != nil {
				return nil // the client went away
			}
		}
		if fl != nil {
			fl.Flush()
		}
		if len(ids) < resultsPage {
			return nil
		}
	}
}
