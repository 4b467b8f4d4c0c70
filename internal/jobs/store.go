package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// Store keeps job records in Redis: one hash per job at job:<id>, and a
// per-tenant count of unfinished jobs for the queue quota.
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
// transition of a job in the batch keeps up to date atomically.
func BatchKey(id string) string { return "batch:" + id }

// RecordKey is the hash that holds job id's record.
func RecordKey(id string) string { return "job:" + id }

func unfinishedKey(t string) string { return "tenant:" + t + ":unfinished" }
func ms(t time.Time) string         { return strconv.FormatInt(t.UnixMilli(), 10) }
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

// CreateMany stores new queued jobs, all of one tenant, and counts them
// against it: one round trip per createChunk records, each chunk atomic
// (MULTI/EXEC), so that a chunk is either wholly written or not at all.
func (s *Store) CreateMany(ctx context.Context, js []*Job) error {
	for start := 0; start < len(js); start += createChunk {
		chunk := js[start:min(start+createChunk, len(js))]
		err := s.Replicated(ctx, RecordKey(chunk[0].ID), func(pipe redis.Pipeliner) error {
			batches := map[string]int64{}
			for _, j := range chunk {
				pipe.HSet(ctx, RecordKey(j.ID), recordFields(j))
				if j.BatchID != "" {
					batches[j.BatchID]++
				}
			}
			pipe.IncrBy(ctx, unfinishedKey(chunk[0].Tenant), int64(len(chunk)))
			for b, n := range batches {
				pipe.HIncrBy(ctx, BatchKey(b), string(Queued), n)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("create %d jobs: %w", len(chunk), err)
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
// the tenant's unfinished count. ARGV: the batch key, or "".
var withdraw = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return '' end
if cur ~= 'queued' then return cur end
redis.call('DEL', KEYS[1])
redis.call('DECR', KEYS[2])
if ARGV[1] ~= '' then redis.call('HINCRBY', ARGV[1], 'queued', -1) end
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
		batch := ""
		if j.BatchID != "" {
			batch = BatchKey(j.BatchID)
		}
		cmds[i] = withdraw.Eval(ctx, pipe, []string{RecordKey(j.ID), unfinishedKey(j.Tenant)}, batch)
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
	return errors.Join(errs...)
}

// Unfinished is the tenant's count of jobs not yet in a terminal state.
func (s *Store) Unfinished(ctx context.Context, tenant string) (int64, error) {
	n, err := s.rdb.Get(ctx, unfinishedKey(tenant)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
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
		CreatedAt: fromMS(m["created_at"]), StartedAt: fromMS(m["started_at"]),
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

// Keys of the store's indexes.
const (
	// runningKey orders running jobs by start time, for the reaper.
	runningKey = "jobs:running"
	// slaKey counts finished and met-deadline jobs by model and tier.
	slaKey = "sla:counts"
	// endedKey is the outbox of job ends: the transition that ends a job
	// adds it, in the same atomic step; it leaves once what its end must
	// tell (webhook, batch) is recorded (Told). So an end is told even when
	// the finisher never learns that its transition happened.
	endedKey = "jobs:ended"
)

// FinishedIndex is the sorted set of settled job ids by finish time (ms),
// which expiry walks.
const FinishedIndex = "jobs:finished"

// ExpiredGrace is how long an expired job's record stays readable (status
// expired, without its result) before it is gone.
const ExpiredGrace = 24 * time.Hour

// transition moves a job atomically: it checks the current state against
// the legal sources, writes the new state and fields, counts attempts,
// moves the job between its batch's state counts, keeps the running and
// finished indexes, and when the job reaches its end settles the tenant's
// unfinished count and the SLA counts. (Some keys are built in the script,
// so a Redis Cluster deployment would need hash tags; inferq runs on one
// Redis primary.) It returns {1, previous} on success, {0, current} when
// refused, {-1} when the job does not exist.
//
// ARGV: 1 to, 2 legal sources (comma list), 3 count an attempt, 4 settles,
// 5 TTL ms, 6 now ms, 7 clear the result, 8.. field/value pairs.
var transition = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {-1, ''} end
if not string.find(',' .. ARGV[2] .. ',', ',' .. cur .. ',', 1, true) then return {0, cur} end
local to = ARGV[1]
redis.call('HSET', KEYS[1], 'status', to)
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
if ARGV[7] == '1' then redis.call('HDEL', KEYS[1], 'result') end
local id = redis.call('HGET', KEYS[1], 'id')
local batch = redis.call('HGET', KEYS[1], 'batch_id')
if batch and cur ~= to then
  redis.call('HINCRBY', 'batch:' .. batch, cur, -1)
  redis.call('HINCRBY', 'batch:' .. batch, to, 1)
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
	run := func() ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(moves))
		err := s.pipelined(ctx, RecordKey(moves[0].ID), false, replicas, func(pipe redis.Pipeliner) error {
			for i, m := range moves {
				cmds[i] = transition.EvalSha(ctx, pipe, m.keys(), s.args(m)...)
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run()
	if errors.Is(err, ErrNotReplicated) {
		// Written on the primary but not promised: the caller must not
		// ack; a redelivery finds the end recorded and acks then.
		for i, m := range moves {
			out[i].Err = fmt.Errorf("move job %s to %s: %w", m.ID, m.To, err)
		}
		return out
	}
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis restarted or flushed its scripts: load it and go again
		// (nothing ran, so nothing runs twice).
		if lerr := transition.Load(ctx, s.rdb).Err(); lerr != nil {
			err = lerr
		} else {
			cmds, err = run()
		}
	}
	for i, m := range moves {
		if cmds == nil || cmds[i] == nil {
			out[i].Err = fmt.Errorf("move job %s to %s: %w", m.ID, m.To, err)
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
	return []string{RecordKey(m.ID), unfinishedKey(m.Tenant), FinishedIndex, runningKey, slaKey, endedKey}
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
		time.Now().UnixMilli(), b2s(u.ClearResult)}
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

// FinishedBefore lists up to n jobs that finished before t (expiry).
func (s *Store) FinishedBefore(ctx context.Context, t time.Time, n int64) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, FinishedIndex, &redis.ZRangeBy{Min: "-inf", Max: ms(t), Count: n}).Result()
}

// EndedBefore lists up to n jobs that ended before t and whose ends have
// not been told yet (the outbox's reconciler).
func (s *Store) EndedBefore(ctx context.Context, t time.Time, n int64) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, endedKey, &redis.ZRangeBy{Min: "-inf", Max: ms(t), Count: n}).Result()
}

// Told takes jobs out of the outbox: what their ends must tell is recorded.
func (s *Store) Told(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	return s.rdb.ZRem(ctx, endedKey, members...).Err()
}

// RunningSince lists up to n jobs running since before t (the reaper).
func (s *Store) RunningSince(ctx context.Context, t time.Time, n int64) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, runningKey, &redis.ZRangeBy{Min: "-inf", Max: ms(t), Count: n}).Result()
}

// TouchRunning restarts the reaper's clock of a running job.
func (s *Store) TouchRunning(ctx context.Context, id string, now time.Time) error {
	return s.rdb.ZAddXX(ctx, runningKey, redis.Z{Score: float64(now.UnixMilli()), Member: id}).Err()
}

// Forget drops an id from the indexes (its record is gone).
func (s *Store) Forget(ctx context.Context, id string) error {
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, FinishedIndex, id)
	pipe.ZRem(ctx, runningKey, id)
	_, err := pipe.Exec(ctx)
	return err
}

// SLACount is how many jobs of one model and tier finished, and how many
// of those met their deadline, since the store began.
type SLACount struct {
	Model, Tier   string
	Finished, Met int64
}

// SLACounts reads the counts of every model and tier.
func (s *Store) SLACounts(ctx context.Context) ([]SLACount, error) {
	m, err := s.rdb.HGetAll(ctx, slaKey).Result()
	if err != nil {
		return nil, err
	}
	by := map[[2]string]*SLACount{}
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
			c.Finished = n
		case "met":
			c.Met = n
		}
	}
	out := make([]SLACount, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	return out, nil
}
