// Command scheduler orders submitted jobs per model for the tiers'
// deadlines and releases them to the workers as they free up. Run two: one
// leads (a lease in NATS KV), the other stands by and takes over within a
// few seconds. Every scheduler also serves the periodic upkeep (expiry of
// old results, reaping of stuck jobs); the leader schedules it.
package main

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/inferq/inferq/internal/backends"
	"github.com/inferq/inferq/internal/config"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/rollout"
	"github.com/inferq/inferq/internal/scheduler"
	"github.com/inferq/inferq/internal/sla"
	"github.com/inferq/inferq/internal/tenants"
)

func main() { ops.Main("scheduler", run) }

func run(ctx, _ context.Context, cfg config.Config, log *slog.Logger) error {
	tiers, err := loadTiers(cfg.TenantsFile)
	if err != nil {
		return err
	}
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
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = ops.Serve(ctx, ln, srv.Mux(), 2*time.Second)
	}()
	up := &scheduler.Upkeep{Store: b.Store, Blob: b.Blob, JS: b.JS, ReapAfter: cfg.ReapAfter, Log: log,
		Notifier: notify.New(notify.Config{Redis: b.Redis, Store: b.Store, Retention: cfg.ResultTTL, Log: log,
			Blob: b.Blob, NATS: b.NATS, MaxInlineResult: cfg.MaxInlineResult})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := up.Serve(ctx, b.Redis); err != nil {
			log.Error("upkeep", "err", err)
		}
	}()
	// The leader judges model rollouts; their state is in Redis, so a new
	// leader resumes them.
	judge := rollout.NewJudge(rollout.NewStore(b.Redis), rollout.Thresholds{MinJobs: cfg.RolloutMinJobs}, cfg.RolloutRefresh, log, srv.Registry)
	s, err := scheduler.New(scheduler.Config{
		NATS: b.NATS, JS: b.JS, Store: b.Store, Log: log, Tiers: tiers, Policy: cfg.Policy, JSReplicas: cfg.JSReplicas,
		Metrics: srv.Registry,
		OnLead: func(ctx context.Context) {
			var lw sync.WaitGroup
			defer lw.Wait()
			lw.Add(1)
			go func() { defer lw.Done(); judge.Run(ctx) }()
			up.Schedule(ctx, b.Redis)
		},
	})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// loadTiers reads the tiers from the tenants file (the defaults without
// one), highest priority (shortest deadline) first.
func loadTiers(path string) ([]sla.Tier, error) {
	defs := tenants.DefaultTiers()
	if path != "" {
		reg, err := tenants.Load(path)
		if err != nil {
			return nil, err
		}
		defs = reg.Tiers
	}
	var out []sla.Tier
	for name, t := range defs {
		out = append(out, sla.Tier{Name: name, Deadline: t.Deadline, Share: t.Share})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Deadline != out[j].Deadline {
			return out[i].Deadline < out[j].Deadline
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
