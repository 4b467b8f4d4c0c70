package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors a caller of the store branches on.
var (
	ErrNotFound = errors.New("job not found")
	// ErrIllegal is a transition the state machine forbids, such as
	// finishing a job twice; the caller reads the current state from
	// TransitionError.
	ErrIllegal = errors.New("illegal job transition")
)

// TransitionError says which state refused a move.
type TransitionError struct {
	ID       string
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("job %s: cannot move from %s to %s", e.ID, e.From, e.To)
}

// Unwrap lets errors.Is(err, ErrIllegal) match.
func (e *TransitionError) Unwrap() error { return ErrIllegal }

// Store keeps job records in Redis: one hash per job at job:{tag}:<id>,
// per-tenant counts of unfinished jobs for the queue quota, and indexes
// of running, finished and ended jobs. Every key but the record's is one
// per shard (see Shards), tagged with it, so that a job's atomic steps
// stay in one Redis Cluster slot; readers of a whole index or count walk
// or sum the shards.
type Store struct {
	rdb       redis.UniversalClient
	retention time.Duration
	// minReplicas is how many replicas must hold a new record before
	// CreateMany returns (0: the primary alone, as on a single node).
	minReplicas int
}

// ErrNotReplicated means a write reached the primary but not the replicas
// RequireReplicas asks for in time: a failover now could lose it, so the
// caller must not promise the job (a submit answers 503).
var ErrNotReplicated = errors.New("redis write not confirmed by enough replicas")

// replicaWait bounds how long a write waits for its replicas: a replica
// on loopback or in one zone confirms in well under a millisecond, one
// that takes seconds is as good as down.
const replicaWait = 2 * time.Second

// RequireReplicas makes CreateMany, and TransitionMany when it ends a job,
// return only once n replicas hold the writes (Redis WAIT on the
// connection that wrote them), because Redis
// replicates asynchronously and a failover drops what the old primary had
// not passed on. n = 0 (the default) skips the wait.
func (s *Store) RequireReplicas(n int) { s.minReplicas = n }

// NewStore returns a store on rdb; finished records expire after retention.
func NewStore(rdb redis.UniversalClient, retention time.Duration) *Store {
	return &Store{rdb: rdb, retention: retention}
}

// Redis exposes the client, for readiness checks.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// BatchKey is the hash of a batch's job counts by state, which every
// transition of a job in the batch keeps up to date atomically. Its tag
// is the batch id's shard, which all of the batch's jobs share.
func BatchKey(id string) string { return "batch:" + tagOf(id) + ":" + id }

// RecordKey is the hash that holds job id's record.
func RecordKey(id string) string { return "job:" + tagOf(id) + ":" + id }

// unfinishedKey is shard s's part of tenant t's count of unfinished jobs.
func unfinishedKey(s int, t string) string { return "tenant:" + tags[s] + ":" + t + ":unfinished" }

// The indexes, one per shard.
func runningKey(s int) string { return "jobs:" + tags[s] + ":running" }
func endedKey(s int) string   { return "jobs:" + tags[s] + ":ended" }
func slaKey(s int) string     { return "sla:" + tags[s] + ":counts" }

// FinishedIndex is shard s's sorted set of settled job ids by finish time
// (ms), which expiry walks.
func FinishedIndex(s int) string { return "jobs:" + tags[s] + ":finished" }
func ms(t time.Time) string      { return strconv.FormatInt(t.UnixMilli(), 10) }
func fromMS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// Create stores a new queued job and counts it against its tenant.
func (s *Store) Create(ctx context.Context, j *Job) error {
	return s.CreateMany(ctx, []*Job{j})
}

// createChunk bounds the records one MULTI/EXEC writes, so that a huge
// batch does not hold Redis for long in one step.
const createChunk = 2000

// ErrWrongShard is a job of a batch whose id is not in its batch's shard
// (NewIDIn(ShardOf(batchID)) makes one that is).
var ErrWrongShard = errors.New("job id not in its batch's shard")

// CreateMany stores new queued jobs, all of one tenant, marked
// unpublished (orphans.go), and counts them
// against it: the jobs go by shard (a batch is one), one round trip per
// createChunk records of a shard, each chunk atomic (MULTI/EXEC, one
// Cluster slot), so that a chunk is either wholly written or not at all.
func (s *Store) CreateMany(ctx context.Context, js []*Job) error {
	var byShard [Shards][]*Job
	for _, j := range js {
		sh := ShardOf(j.ID)
		if j.BatchID != "" && ShardOf(j.BatchID) != sh {
			return fmt.Errorf("create job %s of batch %s: %w", j.ID, j.BatchID, ErrWrongShard)
		}
		byShard[sh] = append(byShard[sh], j)
	}
	for sh, group := range byShard {
		for start := 0; start < len(group); start += createChunk {
			chunk := group[start:min(start+createChunk, len(group))]
			err := s.Replicated(ctx, RecordKey(chunk[0].ID), func(pipe redis.Pipeliner) error {
				batches := map[string]int64{}
				marks := make([]redis.Z, len(chunk))
				written := float64(time.Now().UnixMilli())
				for i, j := range chunk {
					pipe.HSet(ctx, RecordKey(j.ID), recordFields(j))
					marks[i] = redis.Z{Score: written, Member: j.ID}
					if j.BatchID != "" {
						batches[j.BatchID]++
					}
				}
				// Unpublished until the scheduler receives its message
				// (see PublishWithin).
				pipe.ZAdd(ctx, unpublishedKey(sh), marks...)
				pipe.IncrBy(ctx, unfinishedKey(sh, chunk[0].Tenant), int64(len(chunk)))
				for b, n := range batches {
					pipe.HIncrBy(ctx, BatchKey(b), string(Queued), n)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("create %d jobs: %w", len(chunk), err)
			}
		}
	}
	return nil
}

// Replicated runs fill's writes as one MULTI/EXEC and, when the store
// requires replicas, waits until that many hold them.
func (s *Store) Replicated(ctx context.Context, key string, fill func(redis.Pipeliner) error) error {
	return s.pipelined(ctx, key, true, s.minReplicas, fill)
}

// pipelined runs fill's commands in one round trip (a MULTI/EXEC when tx)
// and then, when replicas > 0, waits until that many replicas hold them.
// WAIT counts only the writes of its own connection, so both run on one
// connection taken from the pool (on a Cluster, from the primary that owns
// key); and since a primary replicates in order, the wait also covers
// every write that primary took before, from any connection.
func (s *Store) pipelined(ctx context.Context, key string, tx bool, replicas int, fill func(redis.Pipeliner) error) error {
	var c redis.Cmdable = s.rdb
	var conn *redis.Conn
	if replicas > 0 {
		switch rc := s.rdb.(type) {
		case *redis.Client:
			conn = rc.Conn()
		case *redis.ClusterClient:
			m, err := rc.MasterForKey(ctx, key)
			if err != nil {
				return fmt.Errorf("primary for %s: %w", key, err)
			}
			conn = m.Conn()
		default:
			return fmt.Errorf("waiting for replicas needs a single-node, Sentinel or Cluster client, not %T", s.rdb)
		}
		defer conn.Close()
		c = conn
	}
	var err error
	if tx {
		_, err = c.TxPipelined(ctx, fill)
	} else {
		_, err = c.Pipelined(ctx, fill)
	}
	if err != nil || conn == nil {
		return err
	}
	n, err := conn.Wait(ctx, replicas, replicaWait).Result()
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}
	if int(n) < replicas {
		return fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, n, replicas, replicaWait)
	}
	return nil
}

func recordFields(j *Job) map[string]any {
	fields := map[string]any{
		"id": j.ID, "tenant": j.Tenant, "status": string(Queued), "model": j.Model,
		"tier": j.Tier, "created_at": ms(j.CreatedAt), "deadline": ms(j.Deadline),
		"attempts": 0, "content_type": j.ContentType, "input_size": j.InputSize,
	}
	if len(j.Metadata) > 0 {
		fields["metadata"] = string(j.Metadata)
	}
	// An inline input has no key: it lives in the queue message only.
	for k, v := range map[string]string{"input_key": j.InputKey, "batch_id": j.BatchID, "file_name": j.FileName, "webhook_url": j.WebhookURL} {
		if v != "" {
			fields[k] = v
		}
	}
	return fields
}

// withdraw undoes the Create of a job that was never accepted, exactly
// once: a job still queued loses its record and its counts; any other
// state is left to the caller (it returns that state). KEYS: the record,
// the tenant's unfinished count of its shard, and the batch key if any.
var withdraw = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return '' end
if cur ~= 'queued' then return cur end
redis.call('DEL', KEYS[1])
redis.call('DECR', KEYS[2])
if KEYS[3] then redis.call('HINCRBY', KEYS[3], 'queued', -1) end
return 'withdrawn'
`)

// Withdraw undoes the Create of jobs whose submit was refused after their
// records were written (their publish failed), in one round trip. A job
// that is still queued is removed with its counts, once, however often
// Withdraw runs; a job that a scheduler or worker already took (its
// message was stored before the failure) is canceled instead, so that it
// runs no further and its counts settle through the state machine. A job
// that already ended is left as it is.
func (s *Store) Withdraw(ctx context.Context, js []*Job) error {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(js))
	for i, j := range js {
		keys := []string{RecordKey(j.ID), unfinishedKey(ShardOf(j.ID), j.Tenant)}
		if j.BatchID != "" {
			keys = append(keys, BatchKey(j.BatchID))
		}
		cmds[i] = withdraw.Eval(ctx, pipe, keys)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("withdraw %d jobs: %w", len(js), err)
	}
	var moves []Move
	for i, c := range cmds {
		st, err := c.Text()
		if err != nil {
			return fmt.Errorf("withdraw job %s: %w", js[i].ID, err)
		}
		if cur := State(st); CanTransition(cur, Canceled) {
			moves = append(moves, Move{ID: js[i].ID, Tenant: js[i].Tenant, To: Canceled, Update: Update{FinishedAt: time.Now()}})
		}
	}
	var errs []error
	var quiet []string
	for i, res := range s.TransitionMany(ctx, moves) {
		var te *TransitionError
		switch {
		case res.Err == nil:
			quiet = append(quiet, moves[i].ID)
		case !errors.As(res.Err, &te) && !errors.Is(res.Err, ErrNotFound):
			errs = append(errs, res.Err)
		}
	}
	// A job of a refused submit was never the client's: its end tells
	// nobody (no webhook for a job no 202 named).
	errs = append(errs, s.Told(ctx, quiet...))
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	errs = append(errs, s.Unmark(ctx, ids...))
	return errors.Join(errs...)
}

// Unfinished is the tenant's count of jobs not yet in a terminal state:
// the sum of its shards' counts, read in one round trip: one MGET where
// every key is on one node, a pipeline of GETs (split by node) on a
// Cluster, where an MGET across slots is refused.
func (s *Store) Unfinished(ctx context.Context, tenant string) (int64, error) {
	var keys [Shards]string
	for sh := range keys {
		keys[sh] = unfinishedKey(sh, tenant)
	}
	vals := make([]any, Shards)
	if _, cluster := s.rdb.(*redis.ClusterClient); cluster {
		pipe := s.rdb.Pipeline()
		var cmds [Shards]*redis.Cmd
		for sh, k := range keys {
			cmds[sh] = pipe.Do(ctx, "GET", k)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("unfinished jobs of %s: %w", tenant, err)
		}
		for sh, c := range cmds {
			vals[sh] = c.Val()
		}
	} else {
		var err error
		if vals, err = s.rdb.MGet(ctx, keys[:]...).Result(); err != nil {
			return 0, fmt.Errorf("unfinished jobs of %s: %w", tenant, err)
		}
	}
	var total int64
	for _, v := range vals {
		if v == nil {
			continue
		}
		str, _ := v.(string)
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unfinished jobs of %s: count %q: %w", tenant, str, err)
		}
		total += n
	}
	return total, nil
}

// Get reads a job's record.
func (s *Store) Get(ctx context.Context, id string) (*Job, error) {
	m, err := s.rdb.HGetAll(ctx, RecordKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	return decode(m)
}

// GetMany reads several records in one round trip; missing ones are nil.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]*Job, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, RecordKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get %d jobs: %w", len(ids), err)
	}
	out := make([]*Job, len(ids))
	for i, c := range cmds {
		m, err := c.Result()
		if err != nil || len(m) == 0 {
			continue
		}
		if out[i], err = decode(m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decode(m map[string]string) (*Job, error) {
	j := &Job{
		ID: m["id"], Tenant: m["tenant"], Status: State(m["status"]), Model: m["model"],
		ModelVersion: m["model_version"], Tier: m["tier"],
		CreatedAt: fromMS(m["created_at"]), ScheduledAt: fromMS(m["scheduled_at"]), StartedAt: fromMS(m["started_at"]),
		FinishedAt: fromMS(m["finished_at"]), Deadline: fromMS(m["deadline"]),
		BatchID: m["batch_id"], FileName: m["file_name"], InputKey: m["input_key"],
		ContentType: m["content_type"], WebhookURL: m["webhook_url"],
	}
	j.Attempts, _ = strconv.Atoi(m["attempts"])
	if !j.Status.Terminal() { // an ended job's progress is its result
		j.Progress = decodeProgress(m["progress"])
	}
	j.InputSize, _ = strconv.ParseInt(m["input_size"], 10, 64)
	if v, ok := m["met_deadline"]; ok {
		met := v == "1"
		j.MetDeadline = &met
	}
	if v := m["result"]; v != "" {
		j.Result = json.RawMessage(v)
	}
	if v := m["metadata"]; v != "" {
		j.Metadata = json.RawMessage(v)
	}
	if v := m["error"]; v != "" {
		j.Error = &Error{}
		if err := json.Unmarshal([]byte(v), j.Error); err != nil {
			return nil, fmt.Errorf("job %s: bad error field: %w", j.ID, err)
		}
	}
	return j, nil
}

// The store's indexes, each one per shard (the job's): runningKey orders
// running jobs by start time, for the reaper; slaKey counts finished and
// met-deadline jobs by model and tier; endedKey is the outbox of job
// ends: the transition that ends a job adds it, in the same atomic step;
// it leaves once what its end must tell (webhook, batch) is recorded
// (Told). So an end is told even when the finisher never learns that its
// transition happened.

// ExpiredGrace is how long an expired job's record stays readable (status
// expired, without its result) before it is gone.
const ExpiredGrace = 24 * time.Hour

// transition moves a job atomically: it checks the current state against
// the legal sources, writes the new state and fields, counts attempts,
// moves the job between its batch's state counts, keeps the running and
// finished indexes, and when the job reaches its end settles the tenant's
// unfinished count and the SLA counts. It returns {1, previous} on
// success, {0, current} when refused, {-1} when the job does not exist.
//
// KEYS: the record and its shard's unfinished count, finished, running,
// SLA and ended keys. The batch key is built here from the record's
// batch_id, since the caller need not know it, with the job's hash tag
// (ARGV 8): a batch's jobs share its shard (CreateMany checks), so the key
// lies in the slot of the declared keys, which a Cluster accepts.
// ARGV: 1 to, 2 legal sources (comma list), 3 count an attempt, 4 settles,
// 5 TTL ms, 6 now ms, 7 clear the result, 8 hash tag, 9.. field/value pairs.
var transition = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {-1, ''} end
if not string.find(',' .. ARGV[2] .. ',', ',' .. cur .. ',', 1, true) then return {0, cur} end
local to = ARGV[1]
redis.call('HSET', KEYS[1], 'status', to)
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
if ARGV[7] == '1' then redis.call('HDEL', KEYS[1], 'result') end
local id = redis.call('HGET', KEYS[1], 'id')
local batch = redis.call('HGET', KEYS[1], 'batch_id')
if batch and cur ~= to then
  local bk = 'batch:' .. ARGV[8] .. ':' .. batch
  redis.call('HINCRBY', bk, cur, -1)
  redis.call('HINCRBY', bk, to, 1)
end
if to == 'running' then
  redis.call('ZADD', KEYS[4], ARGV[6], id)
elseif cur == 'running' then
  redis.call('ZREM', KEYS[4], id)
end
if ARGV[4] == '1' then
  redis.call('DECR', KEYS[2])
  redis.call('ZADD', KEYS[3], ARGV[6], id)
  redis.call('ZADD', KEYS[6], ARGV[6], id)
  local mt = (redis.call('HGET', KEYS[1], 'model') or '') .. '|' .. (redis.call('HGET', KEYS[1], 'tier') or '')
  redis.call('HINCRBY', KEYS[5], mt .. '|finished', 1)
  if redis.call('HGET', KEYS[1], 'met_deadline') == '1' then
    redis.call('HINCRBY', KEYS[5], mt .. '|met', 1)
  end
end
if to == 'expired' then redis.call('ZREM', KEYS[3], id) end
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return {1, cur}
`)

// Update holds the fields a transition writes besides the state.
type Update struct {
	// ScheduledAt is when the scheduler released the job to the workers
	// (the latest release, for a job queued again).
	ScheduledAt  time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	ModelVersion string
	Result       json.RawMessage
	Error        *Error
	MetDeadline  *bool
	// CountAttempt adds one to the job's attempts (a worker starting it).
	CountAttempt bool
	// ClearResult removes the stored result (expiry).
	ClearResult bool
}

// Transition moves job id to state to, if the state machine allows it from
// the job's current state, and returns the job as it now stands. A refused
// move returns a *TransitionError (errors.Is ErrIllegal).
func (s *Store) Transition(ctx context.Context, id, tenant string, to State, u Update) (State, error) {
	res := s.TransitionMany(ctx, []Move{{ID: id, Tenant: tenant, To: to, Update: u}})
	return res[0].Prev, res[0].Err
}

// Move is one transition of TransitionMany.
type Move struct {
	ID, Tenant string
	To         State
	Update     Update
}

// Moved is the outcome of one Move: the state the job left, or why not.
type Moved struct {
	Prev State
	Err  error
}

// TransitionMany makes several transitions in one round trip to Redis
// (a pipeline of the transition script), each atomic on its own: a worker
// records a whole batch at once.
func (s *Store) TransitionMany(ctx context.Context, moves []Move) []Moved {
	out := make([]Moved, len(moves))
	if len(moves) == 0 {
		return out
	}
	// An end is what a worker acks its message on: with replicas required
	// it waits for them, so that a failover cannot take back a result whose
	// message is gone. Other moves do not wait: their message is still
	// unacked and gives the job out again if a failover rolls them back.
	replicas := 0
	for _, m := range moves {
		if m.To.Terminal() {
			replicas = s.minReplicas
		}
	}
	// WAIT runs on the connection of one primary, whose pipeline takes
	// only keys it owns: on a Cluster the waiting moves go by shard.
	// Otherwise one pipeline takes all (a ClusterClient splits it by slot).
	groups := [][]int{make([]int, len(moves))}
	for i := range moves {
		groups[0][i] = i
	}
	if _, ok := s.rdb.(*redis.ClusterClient); ok && replicas > 0 {
		groups = byShard(len(moves), func(i int) string { return moves[i].ID })
	}
	cmds := make([]*redis.Cmd, len(moves))
	errs := make([]error, len(moves))
	for _, g := range groups {
		run := func() error {
			return s.pipelined(ctx, RecordKey(moves[g[0]].ID), false, replicas, func(pipe redis.Pipeliner) error {
				for _, i := range g {
					cmds[i] = transition.EvalSha(ctx, pipe, moves[i].keys(), s.args(moves[i])...)
				}
				return nil
			})
		}
		err := run()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Redis restarted or flushed its scripts: load it and go again
			// (nothing ran, so nothing runs twice).
			if lerr := transition.Load(ctx, s.rdb).Err(); lerr != nil {
				err = lerr
			} else {
				err = run()
			}
		}
		for _, i := range g {
			if errors.Is(err, ErrNotReplicated) {
				// Written on the primary but not promised: the caller
				// must not ack; a redelivery finds the end recorded and
				// acks then.
				cmds[i] = nil
			}
			errs[i] = err
		}
	}
	for i, m := range moves {
		if cmds[i] == nil {
			out[i].Err = fmt.Errorf("move job %s to %s: %w", m.ID, m.To, errs[i])
			continue
		}
		res, cerr := cmds[i].Slice()
		if cerr != nil {
			out[i].Err = fmt.Errorf("move job %s to %s: %w", m.ID, m.To, cerr)
			continue
		}
		code, _ := res[0].(int64)
		prev, _ := res[1].(string)
		out[i].Prev = State(prev)
		switch code {
		case -1:
			out[i].Err = ErrNotFound
		case 0:
			out[i].Err = &TransitionError{ID: m.ID, From: State(prev), To: m.To}
		}
	}
	return out
}

func (m Move) keys() []string {
	sh := ShardOf(m.ID)
	return []string{RecordKey(m.ID), unfinishedKey(sh, m.Tenant), FinishedIndex(sh), runningKey(sh), slaKey(sh), endedKey(sh)}
}

func (s *Store) args(m Move) []any {
	to, u := m.To, m.Update
	from := From(to)
	srcs := make([]string, len(from))
	for i, f := range from {
		srcs[i] = string(f)
	}
	settles := to.Terminal() && to != Expired
	ttl := int64(0)
	switch {
	case settles:
		// The result lives for the retention, then the upkeep marks the job
		// expired; the record outlives that by the grace.
		ttl = (s.retention + ExpiredGrace).Milliseconds()
	case to == Expired:
		ttl = ExpiredGrace.Milliseconds()
	}
	args := []any{string(to), strings.Join(srcs, ","), b2s(u.CountAttempt), b2s(settles), ttl,
		time.Now().UnixMilli(), b2s(u.ClearResult), tagOf(m.ID)}
	if !u.ScheduledAt.IsZero() {
		args = append(args, "scheduled_at", ms(u.ScheduledAt))
	}
	if !u.StartedAt.IsZero() {
		args = append(args, "started_at", ms(u.StartedAt))
	}
	if !u.FinishedAt.IsZero() {
		args = append(args, "finished_at", ms(u.FinishedAt))
	}
	if u.ModelVersion != "" {
		args = append(args, "model_version", u.ModelVersion)
	}
	if u.MetDeadline != nil {
		args = append(args, "met_deadline", b2s(*u.MetDeadline))
	}
	if u.Result != nil {
		args = append(args, "result", string(u.Result))
	}
	if u.Error != nil {
		b, _ := json.Marshal(u.Error)
		args = append(args, "error", string(b))
	}
	return args
}

// Finishing is the outcome Finish records, for FinishMany.
func Finishing(j *Job, to State, u Update) Move {
	if u.FinishedAt.IsZero() {
		u.FinishedAt = time.Now()
	}
	met := !u.FinishedAt.After(j.Deadline)
	u.MetDeadline = &met
	return Move{ID: j.ID, Tenant: j.Tenant, To: to, Update: u}
}

// Finish moves a job to its terminal state with its outcome, recording
// whether it met its deadline, in one atomic step.
func (s *Store) Finish(ctx context.Context, j *Job, to State, u Update) error {
	return s.TransitionMany(ctx, []Move{Finishing(j, to, u)})[0].Err
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Retention is how long finished jobs keep their results.
func (s *Store) Retention() time.Duration { return s.retention }

// byShard groups the indexes 0..n-1 by the shard of id(i), in shard order.
func byShard(n int, id func(int) string) [][]int {
	var by [Shards][]int
	for i := 0; i < n; i++ {
		sh := ShardOf(id(i))
		by[sh] = append(by[sh], i)
	}
	var out [][]int
	for _, g := range by {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// oldest lists up to n members scored before t across every shard's
// index key(s), oldest first: one pipelined read of each shard's oldest n.
func (s *Store) oldest(ctx context.Context, key func(int) string, t time.Time, n int64) ([]string, error) {
	pipe := s.rdb.Pipeline()
	var cmds [Shards]*redis.ZSliceCmd
	for sh := range cmds {
		cmds[sh] = pipe.ZRangeByScoreWithScores(ctx, key(sh), &redis.ZRangeBy{Min: "-inf", Max: ms(t), Count: n})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var all []redis.Z
	for _, c := range cmds {
		all = append(all, c.Val()...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Score < all[j].Score })
	out := make([]string, 0, min(int64(len(all)), n))
	for _, z := range all {
		if int64(len(out)) == n {
			break
		}
		if id, ok := z.Member.(string); ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// FinishedBefore lists up to n jobs that finished before t (expiry).
func (s *Store) FinishedBefore(ctx context.Context, t time.Time, n int64) ([]string, error) {
	return s.oldest(ctx, FinishedIndex, t, n)
}

// FinishedDue counts the jobs that finished before t, over every shard.
func (s *Store) FinishedDue(ctx context.Context, t time.Time) (int64, error) {
	pipe := s.rdb.Pipeline()
	var cmds [Shards]*redis.IntCmd
	for sh := range cmds {
		cmds[sh] = pipe.ZCount(ctx, FinishedIndex(sh), "-inf", ms(t))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	var total int64
	for _, c := range cmds {
		total += c.Val()
	}
	return total, nil
}

// EndedBefore lists up to n jobs that ended before t and whose ends have
// not been told yet (the outbox's reconciler).
func (s *Store) EndedBefore(ctx context.Context, t time.Time, n int64) ([]string, error) {
	return s.oldest(ctx, endedKey, t, n)
}

// Told takes jobs out of the outbox: what their ends must tell is recorded.
func (s *Store) Told(ctx context.Context, ids ...string) error {
	return s.remove(ctx, ids, endedKey)
}

// remove takes ids out of the sorted-set indexes named by keys, each id
// from its own shard's, in one round trip.
func (s *Store) remove(ctx context.Context, ids []string, keys ...func(int) string) error {
	return s.byShardPipelined(ctx, ids, func(pipe redis.Pipeliner, sh int, members []any) {
		for _, key := range keys {
			pipe.ZRem(ctx, key(sh), members...)
		}
	})
}

// byShardPipelined groups ids by shard and lets add queue each group's
// commands, all in one round trip.
func (s *Store) byShardPipelined(ctx context.Context, ids []string, add func(pipe redis.Pipeliner, sh int, members []any)) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, g := range byShard(len(ids), func(i int) string { return ids[i] }) {
		members := make([]any, len(g))
		for k, i := range g {
			members[k] = ids[i]
		}
		add(pipe, ShardOf(ids[g[0]]), members)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// RunningSince lists up to n jobs running since before t (the reaper).
func (s *Store) RunningSince(ctx context.Context, t time.Time, n int64) ([]string, error) {
	return s.oldest(ctx, runningKey, t, n)
}

// TouchRunning restarts the reaper's clock of a running job.
func (s *Store) TouchRunning(ctx context.Context, id string, now time.Time) error {
	return s.rdb.ZAddXX(ctx, runningKey(ShardOf(id)), redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err()
}

// Forget drops ids from the indexes (their records are gone).
func (s *Store) Forget(ctx context.Context, ids ...string) error {
	return s.remove(ctx, ids, FinishedIndex, runningKey)
}

// SLACount is how many jobs of one model and tier finished, and how many
// of those met their deadline, since the store began.
type SLACount struct {
	Model, Tier   string
	Finished, Met int64
}

// SLACounts reads the counts of every model and tier, summed over the
// shards.
func (s *Store) SLACounts(ctx context.Context) ([]SLACount, error) {
	pipe := s.rdb.Pipeline()
	var cmds [Shards]*redis.MapStringStringCmd
	for sh := range cmds {
		cmds[sh] = pipe.HGetAll(ctx, slaKey(sh))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	by := map[[2]string]*SLACount{}
	for _, c := range cmds {
		addSLA(by, c.Val())
	}
	out := make([]SLACount, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	return out, nil
}

// addSLA adds one shard's SLA hash to by.
func addSLA(by map[[2]string]*SLACount, m map[string]string) {
	for k, v := range m {
		parts := strings.Split(k, "|")
		if len(parts) != 3 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		c := by[[2]string{parts[0], parts[1]}]
		if c == nil {
			c = &SLACount{Model: parts[0], Tier: parts[1]}
			by[[2]string{parts[0], parts[1]}] = c
		}
		switch parts[2] {
		case "finished":
			c.Finished += n
		case "met":
			c.Met += n
		}
	}
}
