// Package backends connects a process to the fleet's backing services,
// NATS JetStream, Redis and S3, from the shared configuration, creates what
// is missing (streams, bucket), and registers their readiness checks.
package backends

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/blob"
	"github.com/inferq/inferq/internal/config"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/ops"
	"github.com/inferq/inferq/internal/queue"
	"github.com/inferq/inferq/internal/redisurl"
)

// Backends are one process's connections.
type Backends struct {
	NATS *nats.Conn
	JS   jetstream.JetStream
	// Redis is the one client of the process, whatever the URL's shape
	// (single node, Sentinel, Cluster; see internal/redisurl).
	Redis redis.UniversalClient
	Store *jobs.Store
	Blob  *blob.Store
}

// Connect dials every backing service, retrying for up to wait while they
// come up (a fleet often starts before its NATS), and creates the streams
// and the bucket when they are missing.
func Connect(ctx context.Context, cfg config.Config, name string, wait time.Duration, log *slog.Logger) (*Backends, error) {
	deadline := time.Now().Add(wait)
	var b *Backends
	var err error
	for {
		b, err = connect(ctx, cfg, name)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		log.Warn("backing services not ready, retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func connect(ctx context.Context, cfg config.Config, name string) (*Backends, error) {
	opt, err := redisurl.Parse(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("INFERQ_REDIS_URL: %w", err)
	}
	rdb := opt.Client()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("%s: %w", opt.Describe(), err)
	}
	bs, err := blob.Open(blob.Config{
		Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		Bucket: cfg.S3Bucket, Region: cfg.S3Region,
	})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	if err := bs.EnsureBucket(ctx); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("s3 at %s: %w", cfg.S3Endpoint, err)
	}
	nc, err := queue.Connect(cfg.NATSURL, name)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		rdb.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := queue.Streams(ctx, js, cfg.JSReplicas); err != nil {
		nc.Close()
		rdb.Close()
		return nil, err
	}
	store := jobs.NewStore(rdb, cfg.ResultTTL)
	store.RequireReplicas(cfg.RedisMinReplicas)
	return &Backends{NATS: nc, JS: js, Redis: rdb, Store: store, Blob: bs}, nil
}

// AddChecks registers /readyz checks for each backing service.
func (b *Backends) AddChecks(s *ops.Server) {
	s.AddCheck("nats", func(context.Context) error {
		if st := b.NATS.Status(); st != nats.CONNECTED {
			return errors.New("nats " + st.String())
		}
		return nil
	})
	s.AddCheck("redis", func(ctx context.Context) error { return b.Redis.Ping(ctx).Err() })
	s.AddCheck("s3", b.Blob.Ping)
}

// Close drains NATS (flushing pending acks) and closes Redis.
func (b *Backends) Close() {
	_ = b.NATS.Drain()
	_ = b.Redis.Close()
}

// ModelsDir resolves the configured models directory to a local one. For
// an s3://bucket/prefix it mirrors the prefix into INFERQ_MODELS_CACHE and
// returns a sync function that fetches new versions (call it before each
// refresh); for a local directory sync does nothing.
func (b *Backends) ModelsDir(ctx context.Context, cfg config.Config) (string, func(context.Context) error, error) {
	bucket, prefix, ok := catalog.ParseS3(cfg.ModelsDir)
	if !ok {
		return cfg.ModelsDir, func(context.Context) error { return nil }, nil
	}
	local := cfg.ModelsCache
	if local == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		local = filepath.Join(dir, "inferq", "models", bucket, prefix)
	}
	src := &catalog.S3Source{Client: b.Blob.Client(), Bucket: bucket, Prefix: prefix}
	sync := func(ctx context.Context) error {
		_, err := src.Sync(ctx, local)
		return err
	}
	if err := sync(ctx); err != nil {
		return "", nil, fmt.Errorf("models from %s: %w", cfg.ModelsDir, err)
	}
	return local, sync, nil
}

// KeepModels fetches new model versions (sync) and reloads (reload) every
// d until ctx ends: a process serves a new version without a restart.
func KeepModels(ctx context.Context, d time.Duration, sync func(context.Context) error, reload func() error, log *slog.Logger) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := sync(ctx); err != nil {
				log.Warn("sync models", "err", err)
			}
			if err := reload(); err != nil {
				log.Warn("refresh models", "err", err)
			}
		}
	}
}
