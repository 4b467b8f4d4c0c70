package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/jobs"
)

// submitWindow is how many queue messages are in flight at once; it stays
// under the JetStream client's own bound on pending asynchronous publishes.
const submitWindow = 2000

// Submit stores every job's message on its tier's submit subject, with
// the job id as Nats-Msg-Id (a second publish of a job within JetStream's
// duplicate window is dropped), a window of asynchronous publishes at a
// time, and returns once each is acknowledged (or at the first failure),
// each window within wait. With no reconnect buffer, a publish while NATS
// is down fails at once.
func Submit(ctx context.Context, js jetstream.JetStream, jobList []*jobs.Job, wait time.Duration) error {
	for start := 0; start < len(jobList); start += submitWindow {
		window := jobList[start:min(start+submitWindow, len(jobList))]
		futs := make([]jetstream.PubAckFuture, 0, len(window))
		for _, j := range window {
			f, err := js.PublishMsgAsync(&nats.Msg{
				Subject: SubmitSubject(j.Tier),
				Data:    jobs.MessageFor(j).Encode(),
				Header:  nats.Header{jetstream.MsgIDHeader: []string{j.ID}},
			})
			if err != nil {
				return fmt.Errorf("publish %s: %w", j.ID, err)
			}
			futs = append(futs, f)
		}
		if err := waitAcks(ctx, futs, wait); err != nil {
			return err
		}
	}
	return nil
}

// waitAcks waits for every future's acknowledgement, all within wait.
func waitAcks(ctx context.Context, futs []jetstream.PubAckFuture, wait time.Duration) error {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-timeout.C:
			return errors.New("publish: no acknowledgement in time")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
