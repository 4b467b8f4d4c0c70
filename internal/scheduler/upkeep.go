package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// Upkeep task types, run by asynq.
const (
	TaskExpire = "inferq:expire"
	TaskReap   = "inferq:reap"
	// upkeepQueue is the asynq queue of the periodic upkeep.
	upkeepQueue = "upkeep"
	upkeepEvery = "@every 30s"
)

// Upkeep is the fleet's periodic housekeeping: results past their
// retention become expired (their inputs deleted), and jobs running far
// longer than any batch should (their worker died and the queue lost
// track) are queued again.
type Upkeep struct {
	Store     *jobs.Store
	Blob      *blob.Store
	JS        jetstream.JetStream
	ReapAfter time.Duration
	Log       *slog.Logger
}

// Expire marks up to one page of jobs past their retention expired and
// deletes their inputs; it returns how many.
func (u *Upkeep) Expire(ctx context.Context, now time.Time) (int, error) {
	ids, err := u.Store.FinishedBefore(ctx, now.Add(-u.Store.Retention()), 500)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	recs, err := u.Store.GetMany(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, rec := range recs {
		if rec == nil {
			_ = u.Store.Forget(ctx, ids[i])
			continue
		}
		if _, err := u.Store.Transition(ctx, rec.ID, rec.Tenant, jobs.Expired, jobs.Update{ClearResult: true}); err != nil {
			_ = u.Store.Forget(ctx, rec.ID)
			continue
		}
		for _, key := range []string{rec.InputKey, blob.ResultKey(rec.Tenant, rec.ID)} {
			if key == "" {
				continue
			}
			if err := u.Blob.Delete(ctx, key); err != nil {
				u.Log.Warn("delete expired object", "job", rec.ID, "key", key, "err", err)
			}
		}
		n++
	}
	return n, nil
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
func (u *Upkeep) Serve(ctx context.Context, redis asynq.RedisConnOpt) error {
	srv := asynq.NewServer(redis, asynq.Config{
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
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("upkeep server: %w", err)
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// Schedule enqueues the upkeep tasks periodically until ctx ends; the
// leading scheduler runs it.
func (u *Upkeep) Schedule(ctx context.Context, redis asynq.RedisConnOpt) {
	s := asynq.NewScheduler(redis, &asynq.SchedulerOpts{Logger: quietLogger{u.Log}})
	for _, t := range []string{TaskExpire, TaskReap} {
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
