package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Failed is a delivery that exhausted its retries (or was refused for good)
// and sits archived in asynq, for `inferq webhooks failed`.
type Failed struct {
	// TaskID is what Replay takes; it equals Delivery.ID for tasks made by
	// NewTask.
	TaskID string
	// Delivery is the task's payload; its URL is the receiver's whole
	// URL, token and all: print RedactURL(Delivery.URL), never the URL.
	Delivery Delivery
	// Host is the destination host, safe to print (the URL may hold a
	// receiver's token).
	Host    string
	Retried int
	// LastErr is asynq's last error, URLs redacted.
	LastErr      string
	LastFailedAt time.Time
}

// ListFailed lists archived deliveries in queue QueueName, newest failure
// first as asynq keeps them; pass asynq.Page and asynq.PageSize to page.
// A queue that never existed lists as empty.
func ListFailed(ctx context.Context, in *asynq.Inspector, opts ...asynq.ListOption) ([]Failed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	infos, err := in.ListArchivedTasks(QueueName, opts...)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list failed webhooks: %w", err)
	}
	out := make([]Failed, 0, len(infos))
	for _, ti := range infos {
		if ti.Type != TaskType {
			continue
		}
		// The handler redacts what it returns; RedactText also covers
		// errors stored before it did.
		f := Failed{TaskID: ti.ID, Retried: ti.Retried, LastErr: RedactText(ti.LastErr), LastFailedAt: ti.LastFailedAt}
		if err := json.Unmarshal(ti.Payload, &f.Delivery); err != nil {
			f.LastErr = fmt.Sprintf("undecodable payload (%v); last error: %s", err, f.LastErr)
		}
		f.Host = hostOf(f.Delivery.URL)
		out = append(out, f)
	}
	return out, nil
}

// Replay moves one archived delivery back to pending. It keeps its
// webhook-id and body; the signature and timestamp are made afresh when it
// is sent. asynq keeps the task's retry count, so a replay is one more
// attempt: if it fails too, the task is archived again at once.
func Replay(ctx context.Context, in *asynq.Inspector, taskID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := in.RunTask(QueueName, taskID); err != nil {
		return fmt.Errorf("replay webhook %s: %w", taskID, err)
	}
	return nil
}

// ReplayAll moves every archived delivery back to pending and reports how
// many it moved.
func ReplayAll(ctx context.Context, in *asynq.Inspector) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := in.RunAllArchivedTasks(QueueName)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("replay failed webhooks: %w", err)
	}
	return n, nil
}
