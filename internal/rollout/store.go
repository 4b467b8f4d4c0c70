package rollout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key is the hash of a model's rollout: its fields (model, from, to,
// canary, shadow, window_ms, started_ms, status, reason, ended_ms) and its
// counters, c:<version>:<counter>. Every command touches this one key.
func Key(model string) string { return "rollout:" + model }

// indexKey is the set of models that have a rollout record, for the
// judge and the API to find them without a SCAN (which a Cluster spreads
// over its nodes).
const indexKey = "rollouts"

// ErrBusy is a rollout asked for while another version's is running.
var ErrBusy = errors.New("another rollout of this model is running")

// ErrNotRunning is a decision on a rollout that has already ended (or
// never began).
var ErrNotRunning = errors.New("no rollout of this version is running")

// Store keeps rollouts in Redis.
type Store struct{ rdb redis.Cmdable }

// NewStore is a store on rdb (a client, a cluster client or a ring).
func NewStore(rdb redis.Cmdable) *Store { return &Store{rdb: rdb} }

// startScript starts a rollout unless one of the same version already
// exists (whatever its status: a rolled-back version stays rolled back
// until the operator starts it again with Restart) or another is running.
var startScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
local to = redis.call('HGET', KEYS[1], 'to')
if st and to == ARGV[2] and ARGV[1] ~= 'restart' then return 0 end
if st == 'running' and to ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1`)

// Start records a rollout and returns whether it began now (false: one of
// the same version was already recorded, so many workers may all call it).
func (s *Store) Start(ctx context.Context, st State) (bool, error) { return s.start(ctx, st, "") }

// Restart is Start for the operator: it begins again a rollout of a
// version that was rolled back, aborted or promoted.
func (s *Store) Restart(ctx context.Context, st State) error {
	_, err := s.start(ctx, st, "restart")
	return err
}

func (s *Store) start(ctx context.Context, st State, mode string) (bool, error) {
	args := []any{mode, st.To,
		"model", st.Model, "from", st.From, "to", st.To,
		"canary", strconv.FormatFloat(st.Canary, 'f', -1, 64), "shadow", strconv.FormatFloat(st.Shadow, 'f', -1, 64),
		"window_ms", st.Window.Milliseconds(), "started_ms", st.Started.UnixMilli(), "status", string(Running)}
	n, err := startScript.Run(ctx, s.rdb, []string{Key(st.Model)}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("start rollout of %s: %w", st.Model, err)
	}
	if n < 0 {
		return false, ErrBusy
	}
	if err := s.rdb.SAdd(ctx, indexKey, st.Model).Err(); err != nil {
		return false, fmt.Errorf("index rollout of %s: %w", st.Model, err)
	}
	return n == 1, nil
}

// decideScript ends a running rollout of version ARGV[1] (any version when
// empty), once: the judge and an operator may race.
var decideScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'to') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'reason', ARGV[3], 'ended_ms', ARGV[4])
return 1`)

// Decide ends the running rollout of model (of version to, when given)
// with status and reason; ErrNotRunning when none is running.
func (s *Store) Decide(ctx context.Context, model, to string, status Status, reason string, now time.Time) error {
	n, err := decideScript.Run(ctx, s.rdb, []string{Key(model)}, to, string(status), reason, now.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("decide rollout of %s: %w", model, err)
	}
	if n == 0 {
		return ErrNotRunning
	}
	return nil
}

// Count adds a batch's counters for version in one round trip.
func (s *Store) Count(ctx context.Context, model, version string, c Counters) error {
	k, p := Key(model), "c:"+version+":"
	pipe := s.rdb.Pipeline()
	for f, v := range map[string]int64{"jobs": c.Jobs, "failed": c.Failed, "met": c.Met, "run_us": c.RunMicros, "shadow": c.Shadow, "agree": c.Agree} {
		if v != 0 {
			pipe.HIncrBy(ctx, k, p+f, v)
		}
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		return fmt.Errorf("count rollout of %s: %w", model, err)
	}
	return nil
}

// Get reads a model's rollout; nil when it has none.
func (s *Store) Get(ctx context.Context, model string) (*State, error) {
	m, err := s.rdb.HGetAll(ctx, Key(model)).Result()
	if err != nil {
		return nil, fmt.Errorf("read rollout of %s: %w", model, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return parse(m), nil
}

// List reads every recorded rollout.
func (s *Store) List(ctx context.Context) ([]State, error) {
	models, err := s.rdb.SMembers(ctx, indexKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	var out []State
	for _, m := range models {
		st, err := s.Get(ctx, m)
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, *st)
		}
	}
	return out, nil
}

// maxVersionsCounted bounds the counters read back from one record.
const maxVersionsCounted = 8

func parse(m map[string]string) *State {
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	share := func(k string) float64 {
		f, err := strconv.ParseFloat(m[k], 64)
		if err != nil || f < 0 || f > 1 {
			return 0
		}
		return f
	}
	st := &State{Model: m["model"], From: m["from"], To: m["to"], Canary: share("canary"), Shadow: share("shadow"),
		Window: time.Duration(num("window_ms")) * time.Millisecond, Started: time.UnixMilli(num("started_ms")).UTC(),
		Status: Status(m["status"]), Reason: m["reason"], Counts: map[string]Counters{}}
	st.WindowStr = st.Window.String()
	if e := num("ended_ms"); e > 0 {
		st.Ended = time.UnixMilli(e).UTC()
	}
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, "c:")
		i := strings.LastIndexByte(rest, ':')
		if !ok || i < 0 || (st.Counts[rest[:i]] == Counters{} && len(st.Counts) >= maxVersionsCounted) {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		c := st.Counts[rest[:i]]
		switch rest[i+1:] {
		case "jobs":
			c.Jobs = n
		case "failed":
			c.Failed = n
		case "met":
			c.Met = n
		case "run_us":
			c.RunMicros = n
		case "shadow":
			c.Shadow = n
		case "agree":
			c.Agree = n
		}
		st.Counts[rest[:i]] = c
	}
	return st
}
