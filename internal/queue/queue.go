// Package queue is inferq's JetStream wiring: the streams that carry jobs,
// the consumers that the scheduler and the workers pull from, the subjects
// that name them, and the core-NATS subjects of job events. Every stream
// and consumer is created idempotently by whichever process starts first.
package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams and consumers; deployment manifests (the KEDA
// trigger) refer to them, so they are API.
const (
	JobsStream = "JOBS"
	RunStream  = "RUN"
	// SchedulerConsumer is the one durable consumer of JOBS.
	SchedulerConsumer = "scheduler"
	// GiveUpStream keeps JetStream's advisories for run messages that
	// reached MaxDeliver, so that the job is ended even when no worker was
	// listening at the moment JetStream gave up; GiveUpConsumer is the
	// workers' shared consumer of it.
	GiveUpStream   = "RUN_GIVEUPS"
	GiveUpConsumer = "workers"
)

// SubmitSubject is where the producer publishes a job of tier.
func SubmitSubject(tier string) string { return "jobs.submit." + tier }

// RunSubject is where the scheduler releases a job of model to workers.
func RunSubject(model string) string { return "jobs.run." + model }

// RunConsumer is the durable consumer all workers of model share.
func RunConsumer(model string) string { return "run-" + model }

// EventSubject carries the state changes of one job (core NATS, not
// stored: the record in Redis is the truth, events only wake waiters).
func EventSubject(tenant, id string) string { return "jobs.events." + tenant + "." + id }

// Connect dials NATS with the options every process wants: endless
// reconnects, and no reconnect buffer, so that a publish while NATS is down
// fails at once (the producer must answer 503, not hold the client). url
// may list every node of a cluster, comma-separated: the first connect
// tries each, and a reconnect goes to any node that is up (those the
// cluster announces too), every 250 ms, so that losing one node costs a
// client well under a second (TestNATSRunLeaderKilled).
func Connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(false),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}

// Streams creates or updates JOBS and RUN (file storage, work-queue
// retention: a message lives until acked; a dedupe window on Nats-Msg-Id,
// the job id, so that a retried publish stores one message) and the
// stream that keeps RUN's max-deliveries advisories.
func Streams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range []jetstream.StreamConfig{
		{
			Name: JobsStream, Subjects: []string{"jobs.submit.>"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Duplicates: 2 * time.Minute, Discard: jetstream.DiscardNew,
		},
		{
			Name: RunStream, Subjects: []string{"jobs.run.>"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			Duplicates: 10 * time.Minute, Discard: jetstream.DiscardNew,
		},
		{
			Name: GiveUpStream, Subjects: []string{MaxDeliveriesSubject(RunStream, "*")},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
			MaxAge: 7 * 24 * time.Hour,
		},
	} {
		cfg.Replicas = max(replicas, 1)
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// SchedulerConsumerConfig is JOBS's consumer. The scheduler holds jobs
// unacked while it orders them, so AckWait is long and acks pending are
// unbounded; a scheduler taking over recreates the consumer to receive at
// once everything its predecessor held (Reset).
func SchedulerConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       SchedulerConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       24 * time.Hour,
		MaxAckPending: -1,
		MaxDeliver:    -1,
		FilterSubject: "jobs.submit.>",
	}
}

// ResetSchedulerConsumer deletes and recreates the scheduler's consumer:
// on a work-queue stream every unacked job becomes deliverable again, in
// stream order, to the new consumer.
func ResetSchedulerConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	if err := js.DeleteConsumer(ctx, JobsStream, SchedulerConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("delete scheduler consumer: %w", err)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, JobsStream, SchedulerConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("create scheduler consumer: %w", err)
	}
	return c, nil
}

// RunConsumerConfig is the consumer the workers of model share.
func RunConsumerConfig(model string, ackWait time.Duration, maxDeliver int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       RunConsumer(model),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: 10000,
		FilterSubject: RunSubject(model),
	}
}

// EnsureRunConsumer creates or updates model's run consumer.
func EnsureRunConsumer(ctx context.Context, js jetstream.JetStream, model string, ackWait time.Duration, maxDeliver int) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, RunStream, RunConsumerConfig(model, ackWait, maxDeliver))
	if err != nil {
		return nil, fmt.Errorf("run consumer for %s: %w", model, err)
	}
	return c, nil
}

// GiveUpConsumerConfig is the workers' shared consumer of the advisories.
func GiveUpConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: GiveUpConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
	}
}

// MaxDeliveriesSubject is JetStream's advisory for a message of consumer
// that reached MaxDeliver.
func MaxDeliveriesSubject(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
}

// Publish stores data on subject with id as Nats-Msg-Id and waits for
// JetStream's acknowledgement: only then is the message durable.
func Publish(ctx context.Context, js jetstream.JetStream, subject, id string, data []byte) error {
	_, err := js.PublishMsg(ctx, &nats.Msg{
		Subject: subject,
		Data:    data,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{id}},
	})
	if err != nil {
		return fmt.Errorf("publish %s to %s: %w", id, subject, err)
	}
	return nil
}

// ProbeHeader marks a probe: an empty message on a job's submit subject,
// with the job's id as its Nats-Msg-Id, that the sweep publishes to learn
// whether the job's own message was ever stored (see jobs.Probed). The
// scheduler answers it and drops it.
const ProbeHeader = "Inferq-Probe"

// PublishProbe publishes a probe of job id of tier and reports whether
// JetStream took it for a duplicate: then the job's message was stored
// (within the dedupe window) and the probe was not.
func PublishProbe(ctx context.Context, js jetstream.JetStream, tier, id string) (dup bool, err error) {
	ack, err := js.PublishMsg(ctx, &nats.Msg{
		Subject: SubmitSubject(tier),
		Header:  nats.Header{jetstream.MsgIDHeader: []string{id}, ProbeHeader: []string{"1"}},
	})
	if err != nil {
		return false, fmt.Errorf("probe %s: %w", id, err)
	}
	return ack.Duplicate, nil
}
