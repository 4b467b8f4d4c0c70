package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Orphans. A job's record is written before its queue message is
// published (a worker may take the job the moment its message is stored),
// so a producer that dies between the two leaves a queued record that no
// message names: its client got no 202, and nothing would ever end it.
// So every record starts out marked unpublished (CreateMany adds its id to
// its shard's jobs:{tag}:unpublished, scored by when it was written); the
// scheduler unmarks the jobs it receives from the submit stream; and the
// upkeep's sweep asks, for a mark that outlived OrphanAfter, whether the
// job's message exists, by publishing a probe behind it (package
// scheduler). A job found orphaned is withdrawn as a refused submit is.

// PublishWithin is how long after it began writing its records a submit
// may take to have every message stored; one that takes longer is refused
// (503) and withdrawn by its producer, because by then the sweep may be
// deciding that its jobs are orphans.
const PublishWithin = 30 * time.Second

// OrphanAfter is the age of a mark past which the sweep probes for its
// message: twice PublishWithin, so that the producer's and the sweeper's
// wall clocks may differ by up to PublishWithin.
const OrphanAfter = 2 * PublishWithin

func unpublishedKey(s int) string { return "jobs:" + tags[s] + ":unpublished" }
func orphansKey(s int) string     { return "jobs:" + tags[s] + ":orphans" }

// Unmark drops jobs' unpublished marks: the scheduler received their
// messages, or they were withdrawn.
func (s *Store) Unmark(ctx context.Context, ids ...string) error {
	return s.remove(ctx, ids, unpublishedKey)
}

// Unpublished lists up to n jobs marked unpublished since before t,
// oldest first.
func (s *Store) Unpublished(ctx context.Context, t time.Time, n int64) ([]string, error) {
	return s.oldest(ctx, unpublishedKey, t, n)
}

// probed moves a job that is still marked unpublished to its shard's
// orphans. KEYS: the shard's unpublished and orphans keys; ARGV: the id.
var probed = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1])
  return 1
end
return 0
`)

// Probed records what a probe of job id found. The scheduler calls it
// when the probe arrives, after unmarking every job it received before:
// the stream delivers in order, so a mark still there means that no
// message of the job was stored before the probe, and none can be after
// (the probe holds the job's message id in the stream's dedupe window, and
// a producer gives up after PublishWithin). The job becomes an orphan for
// the sweep to end. It reports whether it did.
func (s *Store) Probed(ctx context.Context, id string) (bool, error) {
	sh := ShardOf(id)
	n, err := probed.Run(ctx, s.rdb, []string{unpublishedKey(sh), orphansKey(sh)}, id).Int()
	if err != nil {
		return false, fmt.Errorf("probed %s: %w", id, err)
	}
	return n == 1, nil
}

// Orphans lists up to n jobs that probes found orphaned, over every shard.
func (s *Store) Orphans(ctx context.Context, n int64) ([]string, error) {
	pipe := s.rdb.Pipeline()
	var cmds [Shards]*redis.StringSliceCmd
	for sh := range cmds {
		cmds[sh] = pipe.SRandMemberN(ctx, orphansKey(sh), n)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("orphans: %w", err)
	}
	var out []string
	for _, c := range cmds {
		for _, id := range c.Val() {
			if int64(len(out)) < n {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// Adopted drops ids from the orphans: they are withdrawn, or turned out
// not to be orphans.
func (s *Store) Adopted(ctx context.Context, ids ...string) error {
	return s.byShardPipelined(ctx, ids, func(pipe redis.Pipeliner, sh int, members []any) {
		pipe.SRem(ctx, orphansKey(sh), members...)
	})
}
