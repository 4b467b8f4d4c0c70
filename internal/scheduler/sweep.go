package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/queue"
)

// TaskSweep ends the orphans that a producer leaves when it dies between
// writing its jobs' records and storing their messages (jobs.PublishWithin).
const TaskSweep = "inferq:sweep"

// sweepPage bounds the orphans one run ends and the marks it probes.
const sweepPage = 500

// Sweep ends the orphans that earlier probes found, then probes the jobs
// marked unpublished since before now - jobs.OrphanAfter. It returns how
// many jobs it withdrew or failed.
//
// An orphan's client got no 202 for it, so an orphan is withdrawn as a
// refused submit is (Store.Withdraw: its record and counts go, no webhook)
// and its stored input deleted; an orphan of a batch whose submit never
// finished (no job count) takes the whole batch with it, as the producer
// itself would have. A batch that was promised (it has its count) cannot
// have an orphan, since its producer stored every message first; should
// one be found anyway, it fails (input_missing) so that the batch ends.
func (u *Upkeep) Sweep(ctx context.Context, now time.Time) (int, error) {
	n, err := u.endOrphans(ctx, now)
	if err != nil {
		return n, err
	}
	return n, u.probe(ctx, now)
}

// probe publishes a probe behind each queued job marked since before
// OrphanAfter. A probe that JetStream drops as a duplicate means the job's
// message is stored: the scheduler unmarks it when it receives it. One it
// stores is answered by the scheduler (jobs.Probed). A mark whose job is
// gone or no longer queued is dropped at once: its message was stored.
func (u *Upkeep) probe(ctx context.Context, now time.Time) error {
	ids, err := u.Store.Unpublished(ctx, now.Add(-jobs.OrphanAfter), sweepPage)
	if err != nil || len(ids) == 0 {
		return err
	}
	recs, err := u.Store.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	var taken []string
	probed := 0
	for i, rec := range recs {
		if rec == nil || rec.Status != jobs.Queued {
			taken = append(taken, ids[i])
			continue
		}
		if _, err := queue.PublishProbe(ctx, u.JS, rec.Tier, rec.ID); err != nil {
			return err
		}
		probed++
	}
	if probed > 0 {
		u.Log.Info("sweep: probed jobs whose messages the scheduler has not received", "jobs", probed)
	}
	return u.Store.Unmark(ctx, taken...)
}

// endOrphans withdraws (or fails) the jobs that probes found orphaned.
func (u *Upkeep) endOrphans(ctx context.Context, now time.Time) (int, error) {
	ids, err := u.Store.Orphans(ctx, sweepPage)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	recs, err := u.Store.GetMany(ctx, ids)
	if err != nil {
		return 0, err
	}
	var withdraw []*jobs.Job
	unfinished := map[string]bool{} // batch id: its submit never finished
	ended := 0
	for _, rec := range recs {
		if rec == nil || rec.Status != jobs.Queued {
			continue // gone, or taken after all: nothing to end
		}
		if rec.BatchID == "" {
			withdraw = append(withdraw, rec)
			continue
		}
		promised, err := u.Store.Redis().HExists(ctx, jobs.BatchKey(rec.BatchID), notify.FieldJobs).Result()
		if err != nil {
			return ended, err
		}
		if !promised {
			unfinished[rec.BatchID] = true
			withdraw = append(withdraw, rec)
			continue
		}
		err = u.Store.Finish(ctx, rec, jobs.Failed, jobs.Update{FinishedAt: now,
			Error: &jobs.Error{Code: "input_missing", Message: "the job's queue message was never stored"}})
		if err != nil && !errors.Is(err, jobs.ErrIllegal) {
			return ended, err
		}
		u.Log.Error("sweep: a job of a promised batch had no queue message, failed", "job", rec.ID, "batch", rec.BatchID, "tenant", rec.Tenant)
		ended++
	}
	for b := range unfinished {
		more, err := u.batchJobs(ctx, b)
		if err != nil {
			return ended, err
		}
		withdraw = append(withdraw, more...)
	}
	n, err := u.withdraw(ctx, withdraw, unfinished)
	if err != nil {
		return ended, err
	}
	return ended + n, u.Store.Adopted(ctx, ids...)
}

// batchJobs reads the records of the jobs in batch b's job list.
func (u *Upkeep) batchJobs(ctx context.Context, b string) ([]*jobs.Job, error) {
	ids, err := u.Store.Redis().LRange(ctx, notify.JobsKey(b), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs of batch %s: %w", b, err)
	}
	var out []*jobs.Job
	for start := 0; start < len(ids); start += expiryPage {
		recs, err := u.Store.GetMany(ctx, ids[start:min(start+expiryPage, len(ids))])
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r != nil {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// withdraw withdraws js, deletes their stored inputs (noted first among
// the doomed objects, so that a failed delete is retried by expiry) and
// the records of the unfinished batches.
func (u *Upkeep) withdraw(ctx context.Context, js []*jobs.Job, batches map[string]bool) (int, error) {
	if len(js) == 0 {
		return 0, nil
	}
	seen := map[string]bool{}
	var keys []string
	var doomed []redis.Z
	uniq := js[:0:0]
	for _, j := range js {
		if seen[j.ID] {
			continue
		}
		seen[j.ID] = true
		uniq = append(uniq, j)
		u.Log.Warn("sweep: withdrawing a job whose submit died before its message was stored", "job", j.ID, "tenant", j.Tenant, "batch", j.BatchID, "status", j.Status)
		if j.InputKey != "" {
			keys = append(keys, j.InputKey)
			doomed = append(doomed, redis.Z{Score: float64(time.Now().UnixMilli()), Member: j.InputKey})
		}
	}
	rdb := u.Store.Redis()
	if len(doomed) > 0 {
		if err := rdb.ZAdd(ctx, doomedKey, doomed...).Err(); err != nil {
			return 0, fmt.Errorf("note orphans' inputs: %w", err)
		}
	}
	if err := u.Store.Withdraw(ctx, uniq); err != nil {
		return 0, err
	}
	for b := range batches {
		if err := rdb.Del(ctx, jobs.BatchKey(b), notify.JobsKey(b)).Err(); err != nil {
			return 0, fmt.Errorf("drop batch %s: %w", b, err)
		}
	}
	if len(keys) > 0 {
		u.deleteObjects(ctx, keys)
	}
	return len(uniq), nil
}
