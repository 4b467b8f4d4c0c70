package queue

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inferq/inferq/internal/jobs"
)

// Event is one state change of a job, as published on its event subject.
type Event struct {
	ID     string     `json:"id"`
	Status jobs.State `json:"status"`
	At     string     `json:"at"`
	// Progress is set on a running document's progress events.
	Progress *jobs.Progress `json:"progress,omitempty"`
}

// CanceledSubject carries the cancellations of every tenant's jobs (the
// same events as on their event subjects), so that the scheduler drops a
// canceled job it holds without reading every state change of every job.
const CanceledSubject = "jobs.canceled"

// PublishEvent announces a job's new state on core NATS. Events wake
// waiters; losing one costs a waiter its wake-up, never a job, so a failed
// publish is not an error.
func PublishEvent(nc *nats.Conn, tenant, id string, st jobs.State, at time.Time) {
	b, _ := json.Marshal(Event{ID: id, Status: st, At: at.UTC().Format(jobs.TimeFormat)})
	_ = nc.Publish(EventSubject(tenant, id), b)
	if st == jobs.Canceled {
		_ = nc.Publish(CanceledSubject, b)
	}
}

// PublishProgress announces a running document job's progress on its
// event subject (a status event of "running" that carries progress).
func PublishProgress(nc *nats.Conn, tenant, id string, p jobs.Progress, at time.Time) {
	b, _ := json.Marshal(Event{ID: id, Status: jobs.Running, At: at.UTC().Format(jobs.TimeFormat), Progress: &p})
	_ = nc.Publish(EventSubject(tenant, id), b)
}
