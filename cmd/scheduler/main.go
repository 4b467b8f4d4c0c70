// Command scheduler orders submitted jobs per model and releases them to
// the workers as they free up.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/inferq/inferq/internal/backends"
	"github.com/inferq/inferq/internal/config"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/scheduler"
)

func main() { ops.Main("scheduler", run) }

func run(ctx, _ context.Context, cfg config.Config, log *slog.Logger) error {
	b, err := backends.Connect(ctx, cfg, "inferq-scheduler", 60*time.Second, log)
	if err != nil {
		return err
	}
	defer b.Close()
	srv := ops.NewServer()
	b.AddChecks(srv)
	ln, err := ops.Listen(cfg.HTTPAddr, 32)
	if err != nil {
		return err
	}
	log.Info("scheduler ops listening", "addr", ln.Addr().String())
	go func() { _ = ops.Serve(ctx, ln, srv.Mux(), 2*time.Second) }()
	s := scheduler.New(scheduler.Config{NATS: b.NATS, JS: b.JS, Store: b.Store, Log: log, Metrics: srv.Registry})
	return s.Run(ctx)
}
