// Command worker runs jobs through ONNX models on one device (--device cpu
// or --device cuda:N): it pulls micro-batches from the run stream, runs
// them, records results and acks. SIGTERM drains: it stops taking jobs and
// finishes the batch in hand; a second signal or --drain-timeout stops it
// at once, leaving what is unfinished to another worker.
package main

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	"github.com/inferq/inferq/internal/backends"
	"github.com/inferq/inferq/internal/config"
	"github.com/inferq/inferq/internal/documents"
	"github.com/inferq/inferq/internal/models"
	"github.com/inferq/inferq/internal/notify"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/ort"
	"github.com/inferq/inferq/internal/rollout"
	"github.com/inferq/inferq/internal/worker"
)

func main() { ops.Main("worker", run) }

func run(ctx, hard context.Context, cfg config.Config, log *slog.Logger) error {
	dev, err := ort.ParseDevice(cfg.Device)
	if err != nil {
		return err
	}
	if err := ort.Init(cfg.ORTLib); err != nil {
		return err
	}
	threads := cfg.Threads
	if threads == 0 && !dev.CUDA {
		threads = max(1, runtime.GOMAXPROCS(0)/cfg.Instances)
	}
	b, err := backends.Connect(ctx, cfg, "inferq-worker", 60*time.Second, log)
	if err != nil {
		return err
	}
	defer b.Close()
	modelsDir, syncModels, err := b.ModelsDir(ctx, cfg)
	if err != nil {
		return err
	}
	// Each model is served as soon as it is loaded, the small ones first,
	// so that the first job of a fresh fleet does not wait for the
	// largest model to load.
	models.SetDocumentLimits(documents.Limits{MaxPages: cfg.MaxPages, DPI: cfg.DocumentDPI})
	reg, loaded, loadDone, err := models.OpenEach(modelsDir, cfg.ModelList(), ort.Options{Device: dev, IntraOpThreads: threads}, cfg.Instances, log)
	if err != nil {
		return err
	}
	defer reg.Close()
	// A worker told which models to serve must serve them all; one serving
	// "everything in the directory" serves what loads and says what did
	// not.
	ctx, failed := context.WithCancelCause(ctx)
	defer failed(nil)
	go func() {
		err := <-loadDone
		switch {
		case err == nil:
		case len(cfg.ModelList()) > 0:
			failed(err)
		default:
			log.Error("some models could not be loaded and are not served", "err", err)
		}
	}()
	log.Info("worker starting", "device", dev.String(), "ort_version", ort.Version(), "models", cfg.ModelList(), "threads", threads, "instances", cfg.Instances)
	srv := ops.NewServer()
	b.AddChecks(srv)
	ln, err := ops.Listen(cfg.HTTPAddr, 32)
	if err != nil {
		return err
	}
	log.Info("worker ops listening", "addr", ln.Addr().String())
	opsCtx, stopOps := context.WithCancel(context.Background())
	defer stopOps()
	go func() { _ = ops.Serve(opsCtx, ln, srv.Mux(), time.Second) }()
	go backends.KeepModels(ctx, cfg.ModelsRefresh, syncModels, func() error { _, err := reg.Refresh(); return err }, log)
	// work outlives ctx by the drain timeout (or a second signal), so that
	// the batches in hand finish and are acked.
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	go func() {
		select {
		case <-hard.Done():
		case <-ctx.Done():
			select {
			case <-hard.Done():
			case <-time.After(cfg.DrainTimeout):
				log.Warn("drain timeout, leaving unfinished jobs for redelivery")
			}
		}
		cancelWork()
	}()
	w := worker.New(worker.Config{
		NATS: b.NATS, JS: b.JS, Store: b.Store, Blob: b.Blob, Registry: reg, Loaded: loaded, Ops: srv, Log: log,
		Device: dev.String(), AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, HoldLimit: cfg.HoldLimit,
		MaxInputBytes: cfg.MaxInputBytes, MaxInlineResult: cfg.MaxInlineResult, Instances: cfg.Instances, MaxBatch: cfg.MaxBatch, JSReplicas: cfg.JSReplicas,
		// Webhooks and batch completion of the jobs this worker ends.
		OnFinish: notify.New(notify.Config{Redis: b.Redis, Store: b.Store, Retention: cfg.ResultTTL, Log: log,
			Blob: b.Blob, NATS: b.NATS, MaxInlineResult: cfg.MaxInlineResult}).OnFinish,
		Rollouts: rollout.NewStore(b.Redis), RolloutRefresh: cfg.RolloutRefresh,
	})
	err = w.Run(ctx, work)
	log.Info("worker stopped")
	if cause := context.Cause(ctx); err == nil && cause != context.Canceled {
		err = cause
	}
	return err
}
