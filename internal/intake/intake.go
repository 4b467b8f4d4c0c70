// Package intake turns what clients send into durable jobs, for one job and
// for a batch alike; the HTTP handlers of package api are thin around it.
//
// An input is read once, as a stream. Up to the inline limit
// (INFERQ_INLINE_INPUT_BYTES) it is kept in memory and travels inside the
// job's queue message to the worker: no S3 object, no PUT, no GET. A larger
// input, or a small one when the process's inline budget is spent, is
// streamed to S3 under its size limit, as before.
//
// Jobs become durable in one order, which every guarantee rests on:
// records in Redis first (one pipelined, atomic step per chunk), then the
// queue messages in JetStream (published asynchronously, one wait for all
// acknowledgements). Only when every message is stored may the caller
// answer 202. A failure on the way withdraws the records and deletes the
// stored objects, so a refusal leaves nothing behind.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/queue"
)

// Config is what intake needs.
type Config struct {
	Store *jobs.Store
	Blob  *blob.Store
	JS    jetstream.JetStream
	// InlineMax is the largest input that travels inline in its queue
	// message (0: every input goes to S3).
	InlineMax int64
	// InlineBudget bounds the inline bytes this process holds at once,
	// over all requests in flight (default DefaultInlineBudget); past it,
	// small inputs go to S3 rather than grow the process.
	InlineBudget int64
	// MaxInputBytes bounds one input.
	MaxInputBytes int64
	// PublishWait bounds the wait for JetStream's acknowledgements.
	PublishWait time.Duration
	Log         *slog.Logger
}

// Defaults of Config.
const (
	// DefaultInlineMax is INFERQ_INLINE_INPUT_BYTES's default. Inputs this
	// small (digit crops, thumbnails, short texts and tensors) are most of
	// what bulk users send; the scheduler holds every queued job's message
	// in memory while it orders them, so a larger default would cost it
	// memory per queued job (100,000 queued jobs at the limit: 2.2 GB).
	// docs/operations.md says how it was chosen.
	DefaultInlineMax = 16 << 10
	// DefaultInlineBudget bounds the inline inputs one producer holds
	// while their requests are read and made durable.
	DefaultInlineBudget = 256 << 20
	// messageOverhead is room for the message's other fields (ids, times,
	// names) beside the base64 of an inline input.
	messageOverhead = 4 << 10
)

// Intake reads inputs and makes jobs durable.
type Intake struct {
	cfg    Config
	log    *slog.Logger
	inline atomic.Int64 // inline bytes held now
}

// New checks cfg and returns an Intake. maxPayload is the NATS server's
// largest message (nats.Conn.MaxPayload); an inline input must fit in one
// with room to spare.
func New(cfg Config, maxPayload int64) (*Intake, error) {
	if cfg.InlineBudget <= 0 {
		cfg.InlineBudget = DefaultInlineBudget
	}
	if cfg.InlineMax < 0 {
		return nil, fmt.Errorf("INFERQ_INLINE_INPUT_BYTES must not be negative")
	}
	if cfg.InlineMax > cfg.MaxInputBytes {
		cfg.InlineMax = cfg.MaxInputBytes
	}
	if need := MessageBytes(cfg.InlineMax); maxPayload > 0 && need > maxPayload {
		return nil, fmt.Errorf("INFERQ_INLINE_INPUT_BYTES %d makes queue messages of up to %d bytes, over the NATS server's max_payload %d: lower it to at most %d",
			cfg.InlineMax, need, maxPayload, (maxPayload-messageOverhead)*3/4)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Intake{cfg: cfg, log: cfg.Log}, nil
}

// MessageBytes is the largest queue message an inline input of n bytes
// makes: its base64, and the other fields.
func MessageBytes(n int64) int64 { return (n+2)/3*4 + messageOverhead }

// reserve takes n bytes of the inline budget, if it has them.
func (in *Intake) reserve(n int64) bool {
	for {
		cur := in.inline.Load()
		if cur+n > in.cfg.InlineBudget {
			return false
		}
		if in.inline.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (in *Intake) unreserve(n int64) { in.inline.Add(-n) }

// ErrNotDurable is a submit that could not be made durable because a
// backing service failed; nothing of it is left. The API answers 503.
var ErrNotDurable = errors.New("the jobs could not be made durable")

// Batch is the record of a batch (package notify reads it): its hash is
// written before its jobs, its job list beside their records, and its job
// count last, once every job is durable, so that the batch can complete
// only then.
type Batch struct {
	ID string
	// Fields are the batch hash's fields (tenant, model, webhook,
	// metadata), as package notify names them.
	Fields map[string]any
}

// Commit makes js, whose inputs g read, durable: the batch record (b may
// be nil for a single job), the job records, the batch's job list, every
// queue message, and last the batch's job count. On any failure it
// withdraws what it wrote and returns an error wrapping ErrNotDurable; the
// caller then deletes the stored inputs (Gather.Close) and answers 503.
func (in *Intake) Commit(ctx context.Context, g *Gather, b *Batch, js []*jobs.Job) error {
	// Every input is stored before any record or message names it: a
	// worker may take the job the moment its message is stored.
	if err := g.Wait(); err != nil {
		return err
	}
	rdb := in.cfg.Store.Redis()
	undo := func(step string, cause error) error {
		uctx := context.WithoutCancel(ctx)
		in.log.Warn("submit refused, undoing it", "step", step, "jobs", len(js), "err", cause)
		werr := in.cfg.Store.Withdraw(uctx, js)
		if b != nil {
			werr = errors.Join(werr, rdb.Del(uctx, jobs.BatchKey(b.ID), notify.JobsKey(b.ID)).Err())
		}
		if werr != nil {
			// What could not be withdrawn (Redis failed too) stays a
			// queued record that no message names: the orphan a producer
			// also leaves when it dies between records and messages,
			// which the upkeep's sweep ends (jobs.PublishWithin).
			in.log.Error("undo a refused submit", "jobs", len(js), "err", werr)
		}
		return fmt.Errorf("%w: %s: %w", ErrNotDurable, step, cause)
	}
	if b != nil {
		if err := rdb.HSet(ctx, jobs.BatchKey(b.ID), b.Fields).Err(); err != nil {
			return undo("batch record", err)
		}
	}
	// From the first record on, the submit has PublishWithin to store
	// every message; past it the sweep may be ending its jobs as orphans,
	// so it is refused however the publish went. (Once every message is
	// stored in time, no job of it can be taken for an orphan.)
	began := time.Now()
	late := func() error {
		if d := time.Since(began); d > jobs.PublishWithin {
			return fmt.Errorf("stored %s after the first record, past %s", d.Round(time.Millisecond), jobs.PublishWithin)
		}
		return nil
	}
	if err := in.cfg.Store.CreateMany(ctx, js); err != nil {
		return undo("job records", err)
	}
	if b != nil {
		pipe := rdb.Pipeline()
		for start := 0; start < len(js); start += listChunk {
			ids := make([]any, 0, listChunk)
			for _, j := range js[start:min(start+listChunk, len(js))] {
				ids = append(ids, j.ID)
			}
			pipe.RPush(ctx, notify.JobsKey(b.ID), ids...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return undo("batch job list", err)
		}
	}
	if err := in.publish(ctx, js); err != nil {
		return undo("queue", err)
	}
	if err := late(); err != nil {
		return undo("queue", err)
	}
	if b != nil {
		// The last write of a batch's submit: with replicas required it
		// waits for them, so the job list and counts written since the
		// records (which CreateMany waited for) survive a failover too.
		err := in.cfg.Store.Replicated(ctx, jobs.BatchKey(b.ID), func(pipe redis.Pipeliner) error {
			pipe.HSet(ctx, jobs.BatchKey(b.ID), notify.FieldJobs, len(js))
			return nil
		})
		if err != nil {
			return undo("batch count", err)
		}
	}
	return nil
}

// listChunk bounds the ids of one RPUSH.
const listChunk = 10_000

// publish stores every job's message in JetStream and returns once each
// is acknowledged (or at the first failure).
func (in *Intake) publish(ctx context.Context, js []*jobs.Job) error {
	return queue.Submit(ctx, in.cfg.JS, js, in.cfg.PublishWait)
}
