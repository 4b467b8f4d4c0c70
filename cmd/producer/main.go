// Command producer serves inferq's public HTTP API: it accepts jobs,
// streams their inputs to S3, records them in Redis and queues them on
// JetStream, and answers status, long-polls and events.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/inferq/inferq/internal/api"
	"github.com/inferq/inferq/internal/backends"
	"github.com/inferq/inferq/internal/config"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/tenants"
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
	a, err := api.New(api.Config{
		Store: b.Store, Blob: b.Blob, NATS: b.NATS, JS: b.JS, Tenants: reg,
		ModelsDir: cfg.ModelsDir, MaxInputBytes: cfg.MaxInputBytes, PublishWait: cfg.PublishWait,
		Log: log, Metrics: srv.Registry,
	})
	if err != nil {
		return err
	}
	a.Routes(srv.Mux())
	ln, err := ops.Listen(cfg.HTTPAddr, 0)
	if err != nil {
		return err
	}
	log.Info("producer listening", "addr", ln.Addr().String(), "tenants", len(reg.Names()), "models_dir", cfg.ModelsDir)
	go func() {
		t := time.NewTicker(cfg.ModelsRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := a.RefreshModels(); err != nil {
					log.Warn("refresh models", "err", err)
				}
			}
		}
	}()
	return ops.Serve(ctx, ln, srv.Mux(), 10*time.Second)
}
