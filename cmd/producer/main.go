// Command producer serves inferq's public HTTP API: it accepts jobs and
// batches, streams their inputs to S3, records them in Redis and queues
// them on JetStream, and answers status, long-polls, events and results.
// It also delivers the fleet's webhooks (it holds the tenants' webhook
// secrets): an asynq server on the fleet's Redis, stopped after the API.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/inferq/inferq/internal/api"
	"github.com/inferq/inferq/internal/backends"
	"github.com/inferq/inferq/internal/config"
	"github.com/inferq/inferq/internal/console"
	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/intake"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/rollout"
	"github.com/inferq/inferq/internal/tenants"
	"github.com/inferq/inferq/internal/webhook"
)

func main() { ops.Main("producer", run) }

func run(ctx, _ context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.TenantsFile == "" {
		return fmt.Errorf("INFERQ_TENANTS_FILE is required: the producer admits only tenants with API keys (inferq keys new makes one)")
	}
	reg, err := tenants.Load(cfg.TenantsFile)
	if err != nil {
		return err
	}
	b, err := backends.Connect(ctx, cfg, "inferq-producer", 60*time.Second, log)
	if err != nil {
		return err
	}
	defer b.Close()
	srv := ops.NewServer()
	b.AddChecks(srv)
	allow, err := webhook.ParseAllowNets(cfg.WebhookAllowNets)
	if err != nil {
		return fmt.Errorf("INFERQ_WEBHOOK_ALLOW_NETS: %w", err)
	}
	schedule, err := notify.ParseSchedule(cfg.WebhookRetrySchedule)
	if err != nil {
		return fmt.Errorf("INFERQ_WEBHOOK_RETRY_SCHEDULE: %w", err)
	}
	guard := &webhook.Guard{Allow: allow}
	gone := webhook.NewGoneList(b.Redis)
	delivery, err := notify.NewDelivery(notify.DeliveryConfig{
		Redis: b.Redis, Guard: *guard, Gone: gone, Schedule: schedule, Log: log, Metrics: srv.Registry,
		Secrets: func(name string) (string, bool) {
			if t := reg.Tenant(name); t != nil && t.WebhookSecret != "" {
				return t.WebhookSecret, true
			}
			return "", false
		},
	})
	if err != nil {
		return err
	}
	if err := delivery.Start(); err != nil {
		return err
	}
	defer delivery.Shutdown()
	modelsDir, syncModels, err := b.ModelsDir(ctx, cfg)
	if err != nil {
		return err
	}
	kv, err := coord.Open(ctx, b.JS, cfg.JSReplicas)
	if err != nil {
		return err
	}
	estimates, err := coord.WatchEstimates(ctx, kv.State)
	if err != nil {
		return err
	}
	in, err := intake.New(intake.Config{
		Store: b.Store, Blob: b.Blob, JS: b.JS, InlineMax: cfg.InlineInputBytes,
		MaxInputBytes: cfg.MaxInputBytes, PublishWait: cfg.PublishWait, Log: log,
	}, b.NATS.MaxPayload())
	if err != nil {
		return err
	}
	a, err := api.New(api.Config{
		Intake: in, Store: b.Store, Blob: b.Blob, NATS: b.NATS, JS: b.JS, Tenants: reg, Estimates: estimates,
		ModelsDir: modelsDir, Rollouts: rollout.NewStore(b.Redis), MaxInputBytes: cfg.MaxInputBytes, PublishWait: cfg.PublishWait,
		Notifier: notify.New(notify.Config{Redis: b.Redis, Store: b.Store, Retention: cfg.ResultTTL, Log: log,
			Blob: b.Blob, NATS: b.NATS, MaxInlineResult: cfg.MaxInlineResult}),
		WebhookGuard: guard, WebhookGone: gone,
		Documents: documents.NewOpener(documents.Limits{MaxPages: cfg.MaxPages}),
		Log:       log, Metrics: srv.Registry,
	})
	if err != nil {
		return err
	}
	a.Routes(srv.Mux())
	admins, err := tenants.ParseKeySet(cfg.AdminKeys)
	if err != nil {
		return fmt.Errorf("INFERQ_ADMIN_KEYS: %w", err)
	}
	ui, err := console.New(console.Config{Store: b.Store, Blob: b.Blob, KV: kv, Tenants: reg, AdminKeys: admins,
		API: a, ModelsDir: modelsDir, Log: log})
	if err != nil {
		return err
	}
	srv.Mux().Handle("/ui/", ui.Handler())
	go ui.Run(ctx)
	ln, err := ops.Listen(cfg.HTTPAddr, 0)
	if err != nil {
		return err
	}
	log.Info("producer listening", "addr", ln.Addr().String(), "tenants", len(reg.Names()), "models_dir", cfg.ModelsDir,
		"inline_input_bytes", cfg.InlineInputBytes, "webhook_allow_nets", cfg.WebhookAllowNets, "webhook_retry_schedule", schedule)
	go backends.KeepModels(ctx, cfg.ModelsRefresh, syncModels, a.RefreshModels, log)
	return ops.Serve(ctx, ln, srv.Mux(), 10*time.Second)
}
