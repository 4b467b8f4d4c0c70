package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/webhook"
)

// DeliveryConfig configures the webhook delivery server of a producer.
type DeliveryConfig struct {
	// Redis is the fleet's Redis, where asynq keeps the queue.
	Redis redis.UniversalClient
	// Secrets returns a tenant's webhook secret.
	Secrets func(tenant string) (string, bool)
	// Guard decides which addresses deliveries may reach.
	Guard webhook.Guard
	// Gone remembers destinations that answered 410; nil: none.
	Gone *webhook.GoneList
	// Schedule, when set, replaces the Standard Webhooks retry schedule:
	// the n-th retry waits Schedule[n], and a delivery is archived after
	// len(Schedule) retries (at most webhook.MaxRetry).
	Schedule []time.Duration
	// Concurrency bounds deliveries in flight (default 20).
	Concurrency int
	Log         *slog.Logger
	Metrics     prometheus.Registerer
}

// Delivery is the asynq server that sends webhooks.
type Delivery struct {
	srv *asynq.Server
	h   *handler
}

// NewDelivery builds the delivery server; Start runs it.
func NewDelivery(cfg DeliveryConfig) (*Delivery, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	d, err := webhook.NewDeliverer(webhook.Config{Secrets: cfg.Secrets, Guard: cfg.Guard, Gone: cfg.Gone, Logger: log})
	if err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 20
	}
	h := &handler{d: d, schedule: cfg.Schedule, m: newDeliveryMetrics(cfg.Metrics)}
	// Retries are due at least 5 s apart on the standard schedule; a
	// replaced schedule may be much shorter, so look for due retries at
	// least as often as its shortest step.
	check := time.Second
	for _, s := range cfg.Schedule {
		check = max(50*time.Millisecond, min(check, s))
	}
	srv := asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{webhook.QueueName: 1},
		RetryDelayFunc:           h.retryDelay,
		TaskCheckInterval:        250 * time.Millisecond,
		DelayedTaskCheckInterval: check,
		ShutdownTimeout:          20 * time.Second,
		Logger:                   asynqLogger{log.With("component", "webhooks")},
		LogLevel:                 asynq.WarnLevel,
	})
	return &Delivery{srv: srv, h: h}, nil
}

// Start begins delivering in the background.
func (d *Delivery) Start() error {
	if err := d.srv.Start(d.h); err != nil {
		return fmt.Errorf("start webhook delivery: %w", err)
	}
	return nil
}

// Shutdown stops taking deliveries and waits for those in flight (up to
// the server's shutdown timeout; unfinished ones are retried later).
func (d *Delivery) Shutdown() { d.srv.Shutdown() }

// ParseSchedule reads a retry schedule: comma-separated durations such as
// "200ms,1s". Empty gives nil (the standard schedule).
func ParseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		d, err := time.ParseDuration(item)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("webhook retry schedule: %q is not a duration", item)
		}
		out = append(out, d)
	}
	if len(out) > webhook.MaxRetry {
		return nil, fmt.Errorf("webhook retry schedule: %d steps, at most %d", len(out), webhook.MaxRetry)
	}
	return out, nil
}

type handler struct {
	d        *webhook.Deliverer
	schedule []time.Duration
	m        deliveryMetrics
}

func (h *handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	err := h.d.ProcessTask(ctx, t)
	h.m.seconds.Observe(time.Since(start).Seconds())
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if err != nil && h.schedule != nil && retried >= len(h.schedule) && !errors.Is(err, asynq.SkipRetry) {
		err = fmt.Errorf("%w (retry schedule exhausted): %w", err, asynq.SkipRetry)
	}
	switch {
	case err == nil:
		h.m.outcomes.WithLabelValues("delivered").Inc()
	case errors.Is(err, asynq.SkipRetry) || retried >= maxRetry:
		h.m.outcomes.WithLabelValues("archived").Inc()
	default:
		h.m.outcomes.WithLabelValues("retry").Inc()
	}
	return err
}

func (h *handler) retryDelay(n int, err error, t *asynq.Task) time.Duration {
	if h.schedule == nil || (t != nil && t.Type() != webhook.TaskType) {
		return webhook.RetryDelay(n, err, t)
	}
	d := time.Duration(0)
	if len(h.schedule) > 0 {
		d = h.schedule[max(0, min(n, len(h.schedule)-1))]
	}
	var de *webhook.DeliveryError
	if errors.As(err, &de) && de.RetryAfter > d {
		d = min(de.RetryAfter, webhook.MaxRetryAfter)
	}
	return d
}

type deliveryMetrics struct {
	outcomes *prometheus.CounterVec
	seconds  prometheus.Histogram
}

func newDeliveryMetrics(reg prometheus.Registerer) deliveryMetrics {
	m := deliveryMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferq_webhook_attempts_total",
			Help: "Webhook delivery attempts by outcome: delivered, retry (failed, will be retried), archived (failed for good, replayable).",
		}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "inferq_webhook_attempt_seconds", Help: "Time of one webhook delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.seconds)
	}
	return m
}

// asynqLogger writes asynq's own log lines through slog, with any URL in
// them redacted (webhook.RedactText): asynq names tasks by id today, but
// a line that quoted a delivery's error or payload would carry the
// receiver's token.
type asynqLogger struct{ l *slog.Logger }

func line(args []any) string { return webhook.RedactText(fmt.Sprint(args...)) }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(line(args)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(line(args)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(line(args)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(line(args)) }

// Fatal is what asynq calls when it cannot go on; like log.Fatal, it ends
// the process.
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(line(args))
	os.Exit(1)
}
