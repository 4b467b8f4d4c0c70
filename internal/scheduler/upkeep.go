package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/queue"
)

// Upkeep task types, run by asynq.
const (
	TaskExpire = "inferq:expire"
	TaskReap   = "inferq:reap"
	// TaskReconcile tells the job ends their finishers did not (the
	// outbox, notify.Reconcile).
	TaskReconcile = "inferq:reconcile"
	// upkeepQueue is the asynq queue of the periodic upkeep.
	upkeepQueue = "upkeep"
	upkeepEvery = "@every 30s"
)

// Upkeep is the fleet's periodic housekeeping: results past their
// retention become expired (their inputs and stored outputs deleted), and
// jobs running far longer than any batch should (their worker died and
// the queue lost track) are queued again.
type Upkeep struct {
	Store     *jobs.Store
	Blob      *blob.Store
	JS        jetstream.JetStream
	ReapAfter time.Duration
	// ExpiryBudget bounds one Expire run; 0 means 20 s, inside the 30 s
	// between runs so that two runs do not overlap.
	ExpiryBudget time.Duration
	// Notifier tells job ends left in the outbox; nil: none is told.
	Notifier *notify.Notifier
	Log      *slog.Logger

	// holdFrom is the shard the next hold pass begins with.
	holdFrom int
}

// Keys of the expiry (besides the store's records, jobs.RecordKey, and
// its per-shard indexes of settled jobs by finish time, jobs.FinishedIndex).
// Each is one key, so every command on it is single-slot on a Cluster.
const (
	// holdCursorKey holds, per shard (field: the shard's number), the
	// finish time (ms) from which the next hold pass looks.
	holdCursorKey = "upkeep:expiry:held:shards"
	// doomedKey holds the S3 keys of expired jobs not yet deleted (sorted
	// set; score: when they were doomed, ms). It has no TTL: a key leaves
	// it only once S3 confirmed the delete.
	doomedKey = "upkeep:expiry:objects"
)

const (
	// expiryPage is how many jobs one round of expiry reads, moves and
	// deletes the objects of: one pipeline of reads, one of transitions,
	// one S3 DeleteObjects (which takes up to 1000 keys) per kind of key.
	expiryPage = 1000
	// holdOverlap is how far before the last hold pass the next one looks
	// again: a job's finish time is its worker's clock, and its record
	// may land a moment after the time it carries.
	holdOverlap         = 30 * time.Second
	defaultExpiryBudget = 20 * time.Second
)

// Expire marks the jobs past their retention expired and deletes their
// inputs and stored outputs, a page at a time until none is due or the
// run's budget is spent; it returns how many it expired.
//
// Nothing it has not deleted is forgotten:
//   - A settled job's record expires (retention + jobs.ExpiredGrace after
//     it finished), and with it the only note of its tenant and input
//     key. So every run first makes the records of the jobs that finished
//     since the last run persistent (hold); a record then lives until
//     expiry has moved it to expired, which gives it the grace again.
//   - The keys of a page's objects go into a durable set before the jobs
//     turn expired, and leave it only when S3 confirms their deletion; a
//     delete that failed (S3 down) is retried by every later run.
func (u *Upkeep) Expire(ctx context.Context, now time.Time) (int, error) {
	budget := u.ExpiryBudget
	if budget <= 0 {
		budget = defaultExpiryBudget
	}
	start := time.Now()
	stop := start.Add(budget)
	if err := u.hold(ctx, start.Add(budget/4)); err != nil {
		return 0, err
	}
	cutoff := now.Add(-u.Store.Retention())
	total, s3ok := 0, true
	for {
		ids, err := u.Store.FinishedBefore(ctx, cutoff, expiryPage)
		if err != nil {
			return total, err
		}
		if len(ids) == 0 {
			break
		}
		// Once S3 failed in this run, later pages still expire (their
		// results leave Redis on time) and doom their objects, but leave
		// the deletes to the next run instead of waiting on S3 again.
		n, ok, err := u.expirePage(ctx, ids, s3ok)
		total += n
		if err != nil {
			return total, err
		}
		s3ok = s3ok && ok
		if len(ids) < expiryPage {
			break
		}
		if time.Now().After(stop) {
			due, _ := u.Store.FinishedDue(ctx, cutoff)
			u.Log.Warn("expiry is behind: its run's budget is spent with jobs still due", "expired", total, "due", due, "budget", budget)
			return total, nil
		}
	}
	if s3ok {
		u.retryDeletes(ctx, stop)
	}
	return total, nil
}

// holdRecord makes a settled job's record persistent. An expired one
// keeps its TTL (the grace): a hold that raced with expiry must not keep
// it for good.
var holdRecord = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') == 'expired' then return 0 end
return redis.call('PERSIST', KEYS[1])
`)

// hold makes the records of the jobs that finished since the last pass
// persistent, so that no record expires before expiry has read it. It
// follows the wall clock, not Expire's now: it is about the records being
// written now. It stops at stop and goes on from there next time: the
// records it holds have days before their TTL runs out, while the jobs
// due for expiry are the oldest of all.
func (u *Upkeep) hold(ctx context.Context, stop time.Time) error {
	rdb := u.Store.Redis()
	// Loaded once a pass: a pipeline cannot fall back from EVALSHA to EVAL
	// after Redis lost its scripts.
	if err := holdRecord.Load(ctx, rdb).Err(); err != nil {
		return fmt.Errorf("expiry: load hold script: %w", err)
	}
	// Once stop has passed, the shards not reached wait for the next run,
	// which begins with them, so that none waits behind the others.
	for k := 0; k < jobs.Shards; k++ {
		sh := (u.holdFrom + k) % jobs.Shards
		if k > 0 && time.Now().After(stop) {
			u.holdFrom = sh
			return nil
		}
		if err := u.holdShard(ctx, rdb, sh, stop); err != nil {
			u.holdFrom = sh
			return err
		}
	}
	return nil
}

// holdShard is hold on shard sh's index, with its own cursor: a pass that
// runs out of time in one shard still moves the others on next time.
func (u *Upkeep) holdShard(ctx context.Context, rdb redis.UniversalClient, sh int, stop time.Time) error {
	started := time.Now()
	field := strconv.Itoa(sh)
	// No cursor yet (the first run of this version): hold every record in
	// the index, from the oldest, a slice a run.
	from, err := rdb.HGet(ctx, holdCursorKey, field).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("expiry: read hold cursor: %w", err)
	}
	// A pass that ends looks again, next time, from a little before it
	// began; one that stops early goes on from where it stopped.
	next := started.Add(-holdOverlap).UnixMilli()
	for offset := int64(0); ; offset += expiryPage {
		zs, err := rdb.ZRangeByScoreWithScores(ctx, jobs.FinishedIndex(sh), &redis.ZRangeBy{
			Min: strconv.FormatInt(from, 10), Max: "+inf", Offset: offset, Count: expiryPage,
		}).Result()
		if err != nil {
			return fmt.Errorf("expiry: list finished jobs: %w", err)
		}
		if len(zs) > 0 {
			pipe := rdb.Pipeline()
			for _, z := range zs {
				holdRecord.EvalSha(ctx, pipe, []string{jobs.RecordKey(z.Member.(string))})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("expiry: hold %d records: %w", len(zs), err)
			}
		}
		if len(zs) < expiryPage {
			break
		}
		if time.Now().After(stop) {
			next = int64(zs[len(zs)-1].Score)
			u.Log.Info("expiry: holding finished records is behind; it goes on next run", "shard", sh, "held_up_to", time.UnixMilli(next))
			break
		}
	}
	if err := rdb.HSet(ctx, holdCursorKey, field, next).Err(); err != nil {
		return fmt.Errorf("expiry: write hold cursor: %w", err)
	}
	return nil
}

// expirePage expires the jobs ids (due, from the finished index) and,
// with del, deletes their objects. ok is false when some were not
// deleted: they stay doomed, for a later run.
func (u *Upkeep) expirePage(ctx context.Context, ids []string, del bool) (n int, ok bool, err error) {
	rdb := u.Store.Redis()
	pipe := rdb.Pipeline()
	reads := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		reads[i] = pipe.HMGet(ctx, jobs.RecordKey(id), "tenant", "status", "input_key")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("expiry: read %d records: %w", len(ids), err)
	}
	var (
		moves   []jobs.Move
		keys    []string
		drop    []string
		gone    int
		strange int
	)
	for i, c := range reads {
		v := c.Val()
		tenant, status, input := field(v, 0), jobs.State(field(v, 1)), field(v, 2)
		switch {
		case tenant == "":
			// The record ran out before a hold reached it (a backlog
			// from before holding, or none ran for the whole grace):
			// its tenant and input key are gone with it.
			gone++
			drop = append(drop, ids[i])
			continue
		case !jobs.CanTransition(status, jobs.Expired):
			strange++
			drop = append(drop, ids[i])
			continue
		}
		moves = append(moves, jobs.Move{ID: ids[i], Tenant: tenant, To: jobs.Expired, Update: jobs.Update{ClearResult: true}})
		// An inline input has no key; a stored output may exist whatever
		// the result says (a worker may have stored it and then died), and
		// deleting a key that is not there costs nothing in a bulk delete.
		if input != "" {
			keys = append(keys, input)
		}
		keys = append(keys, blob.ResultKey(tenant, ids[i]))
	}
	if gone > 0 || strange > 0 {
		u.Log.Warn("expiry: finished jobs without an expirable record, dropped from the index",
			"record_gone", gone, "not_settled", strange)
		if err := u.Store.Forget(ctx, drop...); err != nil {
			return 0, false, fmt.Errorf("expiry: drop %d ids: %w", len(drop), err)
		}
	}
	if len(moves) == 0 {
		return 0, true, nil
	}
	// Doomed before they turn expired: once expired, a job leaves the
	// index, and its record lives only the grace.
	doomed := make([]redis.Z, len(keys))
	score := float64(time.Now().UnixMilli())
	for i, k := range keys {
		doomed[i] = redis.Z{Score: score, Member: k}
	}
	if err := rdb.ZAdd(ctx, doomedKey, doomed...).Err(); err != nil {
		return 0, false, fmt.Errorf("expiry: note %d objects: %w", len(keys), err)
	}
	for i, r := range u.Store.TransitionMany(ctx, moves) {
		switch {
		case r.Err == nil:
			n++
		case errors.Is(r.Err, jobs.ErrIllegal), errors.Is(r.Err, jobs.ErrNotFound):
			// Expired by a concurrent run, or gone since the read.
		default:
			return n, false, fmt.Errorf("expiry: job %s: %w", moves[i].ID, r.Err)
		}
	}
	if !del {
		return n, false, nil
	}
	_, ok = u.deleteObjects(ctx, keys)
	return n, ok, nil
}

// retryDeletes deletes what earlier runs doomed but could not delete,
// until none is left, S3 fails again, or stop.
func (u *Upkeep) retryDeletes(ctx context.Context, stop time.Time) {
	rdb := u.Store.Redis()
	for time.Now().Before(stop) {
		keys, err := rdb.ZRange(ctx, doomedKey, 0, expiryPage-1).Result()
		if err != nil {
			u.Log.Warn("expiry: read doomed objects", "err", err)
			return
		}
		if len(keys) == 0 {
			return
		}
		if n, _ := u.deleteObjects(ctx, keys); n == 0 || len(keys) < expiryPage {
			return
		}
	}
}

// deleteObjects deletes keys from S3 in bulk and forgets the doomed keys
// S3 confirmed; it returns how many, and whether that was all. A key S3
// refused moves to the back of the doomed set, so that a few keys S3
// keeps refusing cannot hold up the others.
func (u *Upkeep) deleteObjects(ctx context.Context, keys []string) (int, bool) {
	objs := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	var deleted []any
	var refused []redis.Z
	var lastErr error
	now := float64(time.Now().UnixMilli())
	for r := range u.Blob.Client().RemoveObjectsWithResult(ctx, u.Blob.Bucket(), objs, minio.RemoveObjectsOptions{}) {
		switch {
		case r.Err == nil || minio.ToErrorResponse(r.Err).Code == "NoSuchKey":
			if r.ObjectName != "" {
				deleted = append(deleted, r.ObjectName)
			}
		default:
			lastErr = r.Err
			if r.ObjectName != "" {
				refused = append(refused, redis.Z{Score: now, Member: r.ObjectName})
			}
		}
	}
	rdb := u.Store.Redis()
	if len(deleted) > 0 {
		if err := rdb.ZRem(ctx, doomedKey, deleted...).Err(); err != nil {
			// Deleted but still noted: a later run deletes them again.
			u.Log.Warn("expiry: forget deleted objects", "objects", len(deleted), "err", err)
		}
	}
	if len(refused) > 0 {
		_ = rdb.ZAddXX(ctx, doomedKey, refused...).Err()
	}
	if len(deleted) < len(keys) {
		u.Log.Warn("expiry: objects not deleted, kept for a later run", "objects", len(keys)-len(deleted), "err", lastErr)
		return len(deleted), false
	}
	return len(deleted), true
}

// field is the i-th value of an HMGET reply as a string, "" when absent.
func field(v []any, i int) string {
	if i < len(v) {
		if s, ok := v[i].(string); ok {
			return s
		}
	}
	return ""
}

// Reap queues again the jobs running since before ReapAfter: JetStream
// redelivers a job whose worker died, so a job still running this long has
// lost its message (or its max-deliveries advisory found no worker). It
// returns how many it queued again.
func (u *Upkeep) Reap(ctx context.Context, now time.Time) (int, error) {
	ids, err := u.Store.RunningSince(ctx, now.Add(-u.ReapAfter), 100)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	recs, err := u.Store.GetMany(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, rec := range recs {
		if rec == nil || rec.Status != jobs.Running {
			_ = u.Store.Forget(ctx, ids[i])
			continue
		}
		if rec.InputKey == "" {
			// Its input rode in the message that was lost: it cannot run
			// again. (Its end is told through the outbox.)
			err := u.Store.Finish(ctx, rec, jobs.Failed, jobs.Update{FinishedAt: now,
				Error: &jobs.Error{Code: "input_missing", Message: "the job's queue message, which carried its input, was lost"}})
			if err != nil && !errors.Is(err, jobs.ErrIllegal) {
				return n, err
			}
			u.Log.Warn("job stuck running without its message, failed", "job", rec.ID, "tenant", rec.Tenant, "model", rec.Model)
			continue
		}
		// A fresh message id: the original's may still be in the dedupe
		// window.
		msgID := rec.ID + ".reap." + strconv.FormatInt(now.UnixMilli(), 10)
		if err := queue.Publish(ctx, u.JS, queue.RunSubject(rec.Model), msgID, jobs.MessageFor(rec).Encode()); err != nil {
			return n, err
		}
		_ = u.Store.TouchRunning(ctx, rec.ID, now)
		u.Log.Warn("job stuck running, queued again", "job", rec.ID, "tenant", rec.Tenant, "model", rec.Model, "started_at", rec.StartedAt)
		n++
	}
	return n, nil
}

// Serve runs the upkeep tasks' asynq server until ctx ends. Every
// scheduler serves; only the leader enqueues (Schedule).
func (u *Upkeep) Serve(ctx context.Context, rdb redis.UniversalClient) error {
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 1, Queues: map[string]int{upkeepQueue: 1}, Logger: quietLogger{u.Log},
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TaskExpire, func(ctx context.Context, _ *asynq.Task) error {
		n, err := u.Expire(ctx, time.Now())
		if n > 0 {
			u.Log.Info("expired results", "jobs", n)
		}
		return err
	})
	mux.HandleFunc(TaskReap, func(ctx context.Context, _ *asynq.Task) error {
		_, err := u.Reap(ctx, time.Now())
		return err
	})
	mux.HandleFunc(TaskSweep, func(ctx context.Context, _ *asynq.Task) error {
		_, err := u.Sweep(ctx, time.Now())
		return err
	})
	mux.HandleFunc(TaskReconcile, func(ctx context.Context, _ *asynq.Task) error {
		if u.Notifier == nil {
			return nil
		}
		n, err := u.Notifier.Reconcile(ctx, time.Now().Add(-notify.ReconcileAfter))
		if n > 0 {
			u.Log.Warn("told job ends their finishers had not", "jobs", n)
		}
		return err
	})
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("upkeep server: %w", err)
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// Schedule enqueues the upkeep tasks periodically until ctx ends; the
// leading scheduler runs it.
func (u *Upkeep) Schedule(ctx context.Context, rdb redis.UniversalClient) {
	s := asynq.NewSchedulerFromRedisClient(rdb, &asynq.SchedulerOpts{Logger: quietLogger{u.Log}})
	for _, t := range []string{TaskExpire, TaskReap, TaskReconcile, TaskSweep} {
		// Unique: a leader change inside one period enqueues it once.
		if _, err := s.Register(upkeepEvery, asynq.NewTask(t, nil), asynq.Queue(upkeepQueue), asynq.Unique(25*time.Second)); err != nil {
			u.Log.Error("register upkeep", "task", t, "err", err)
			return
		}
	}
	if err := s.Start(); err != nil {
		u.Log.Error("upkeep scheduler", "err", err)
		return
	}
	<-ctx.Done()
	s.Shutdown()
}

// quietLogger passes asynq's logs to slog.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Debug(args ...any) {}
func (q quietLogger) Info(args ...any)  { q.l.Debug(fmt.Sprint(args...)) }
func (q quietLogger) Warn(args ...any)  { q.l.Warn(fmt.Sprint(args...)) }
func (q quietLogger) Error(args ...any) { q.l.Error(fmt.Sprint(args...)) }
func (q quietLogger) Fatal(args ...any) { q.l.Error(fmt.Sprint(args...)) }
