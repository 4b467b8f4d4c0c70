package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/internal/jobs"
)

// Two small per-tenant indexes let the web console list what a tenant
// has without scanning: its batches by creation time, and its latest
// failed jobs. Each is one sorted set per tenant, written by a command of
// its own (never in a batch's or a job's atomic step, so no cross-slot
// write on a Redis Cluster), and read newest first.

// BatchIndexKey is the sorted set of tenant's batch ids by creation time.
func BatchIndexKey(tenant string) string { return "tenant:batches:" + tenant }

// FailuresKey is the sorted set of tenant's latest failed job ids by the
// time their failure was told.
func FailuresKey(tenant string) string { return "tenant:failures:" + tenant }

// keepFailures is how many failed jobs a tenant's index keeps.
const keepFailures = 200

// IndexBatch adds a committed batch to its tenant's index and drops the
// entries older than keep (the batches' own lifetime; 0 keeps them).
func IndexBatch(ctx context.Context, rdb redis.Cmdable, tenant, id string, created time.Time, keep time.Duration) error {
	key := BatchIndexKey(tenant)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(created.UnixMilli()), Member: id})
		if keep > 0 {
			p.ZRemRangeByScore(ctx, key, "-inf", fmt.Sprint(created.Add(-keep).UnixMilli()))
			p.PExpire(ctx, key, keep)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index batch %s: %w", id, err)
	}
	return nil
}

// RecentBatches reads up to n of tenant's batches, newest first, skipping
// (and forgetting) those that are gone.
func RecentBatches(ctx context.Context, rdb redis.Cmdable, tenant string, n int64) ([]*Batch, error) {
	ids, err := rdb.ZRevRange(ctx, BatchIndexKey(tenant), 0, n-1).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, jobs.BatchKey(id))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read batches of %s: %w", tenant, err)
	}
	var out []*Batch
	var gone []any
	for i, c := range cmds {
		b, err := decodeBatch(ids[i], c.Val())
		if err != nil {
			if len(c.Val()) == 0 {
				gone = append(gone, ids[i])
			}
			continue // gone, or still being submitted
		}
		out = append(out, b)
	}
	if len(gone) > 0 {
		_ = rdb.ZRem(ctx, BatchIndexKey(tenant), gone...).Err()
	}
	return out, nil
}

// RecentFailures reads the ids of up to n of tenant's latest failed jobs,
// newest first.
func RecentFailures(ctx context.Context, rdb redis.Cmdable, tenant string, n int64) ([]string, error) {
	return rdb.ZRevRange(ctx, FailuresKey(tenant), 0, n-1).Result()
}

// recordFailures adds failed jobs to their tenants' indexes, keeping the
// newest keepFailures of each, in one round trip.
func recordFailures(ctx context.Context, rdb redis.Cmdable, byTenant map[string][]string, now time.Time) error {
	if len(byTenant) == 0 {
		return nil
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for tenant, ids := range byTenant {
			zs := make([]redis.Z, len(ids))
			for i, id := range ids {
				zs[i] = redis.Z{Score: float64(now.UnixMilli()), Member: id}
			}
			p.ZAdd(ctx, FailuresKey(tenant), zs...)
			p.ZRemRangeByRank(ctx, FailuresKey(tenant), 0, -keepFailures-1)
		}
		return nil
	})
	return err
}
