package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// maxDeliveriesAdvisory is the part of JetStream's advisory we read.
type maxDeliveriesAdvisory struct {
	Stream    string `json:"stream"`
	Consumer  string `json:"consumer"`
	StreamSeq uint64 `json:"stream_seq"`
	Delivered int    `json:"deliveries"`
}

// watchGiveUps ends the jobs that JetStream gave up on: a job delivered
// MaxDeliver times without an ack fails with max_attempts if it started
// that many runs (it kept killing workers), and is queued again otherwise;
// either way its message leaves the run stream. JetStream's
// advisories are kept in a stream of their own, so one sent while no
// worker was alive (the last one killed by the job) is handled by the next
// worker to start. It runs until ctx ends.
func (w *Worker) watchGiveUps(ctx context.Context) error {
	cons, err := w.cfg.JS.CreateOrUpdateConsumer(ctx, queue.GiveUpStream, queue.GiveUpConsumerConfig())
	if err != nil {
		return fmt.Errorf("give-up consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(msg.Data(), &adv); err != nil {
			w.log.Error("unreadable max-deliveries advisory", "err", err)
			_ = msg.Term()
			return
		}
		if err := w.giveUp(ctx, adv); err != nil {
			w.log.Error("ending a job past max deliveries", "stream_seq", adv.StreamSeq, "err", err)
			_ = msg.NakWithDelay(5 * time.Second)
			return
		}
		_ = msg.Ack()
	})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return nil
}

func (w *Worker) giveUp(ctx context.Context, adv maxDeliveriesAdvisory) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	st, err := w.cfg.JS.Stream(ctx, queue.RunStream)
	if err != nil {
		return err
	}
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // handled already
	}
	if err != nil {
		return fmt.Errorf("read message %d: %w", adv.StreamSeq, err)
	}
	m, err := jobs.DecodeMessage(raw.Data)
	if err == nil {
		// Deliveries are spent by hand-backs too (a worker that held the
		// job through an S3 or Redis outage, or drained), not only by runs
		// that never finished. The record counts runs (attempts, one per
		// start); a job that has not started MaxDeliver runs is sound, so
		// it is queued again, with a fresh count, instead of failed.
		rec, gerr := w.cfg.Store.Get(ctx, m.ID)
		switch {
		case errors.Is(gerr, jobs.ErrNotFound):
			return st.DeleteMsg(ctx, adv.StreamSeq)
		case gerr != nil:
			return gerr
		case !rec.Status.Terminal() && rec.Attempts < w.cfg.MaxDeliver:
			id := fmt.Sprintf("%s.r%d", m.ID, adv.StreamSeq)
			if err := queue.Publish(ctx, w.cfg.JS, raw.Subject, id, raw.Data); err != nil {
				return err
			}
			w.log.Info("job queued again: its deliveries went to hand-backs, not runs", "job", m.ID, "tenant", m.Tenant,
				"model", m.Model, "deliveries", adv.Delivered, "runs", rec.Attempts)
			return st.DeleteMsg(ctx, adv.StreamSeq)
		}
		now := time.Now()
		err = w.cfg.Store.Finish(ctx, &jobs.Job{ID: m.ID, Tenant: m.Tenant, Deadline: m.Deadline}, jobs.Failed, jobs.Update{
			FinishedAt: now,
			Error:      errorOf("max_attempts", fmt.Sprintf("the job was delivered %d times and never finished; it may crash the worker that runs it", adv.Delivered)),
		})
		switch {
		case err == nil:
			w.log.Warn("job failed after max deliveries", "job", m.ID, "tenant", m.Tenant, "model", m.Model, "deliveries", adv.Delivered)
			queue.PublishEvent(w.cfg.NATS, m.Tenant, m.ID, jobs.Failed, now)
			w.finished(ctx, []jobs.Ended{{Message: m, State: jobs.Failed, MetDeadline: !now.After(m.Deadline)}})
			w.m.dead.WithLabelValues(m.Model).Inc()
			w.m.finished(m.Model, m.Tier, jobs.Failed, !now.After(m.Deadline), now.Sub(m.CreatedAt))
		case isIllegal(err):
			// Already finished (its last run recorded a result but died
			// before the ack).
		default:
			return err
		}
	}
	return st.DeleteMsg(ctx, adv.StreamSeq)
}
