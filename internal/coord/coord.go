// Package coord is how the fleet's processes coordinate through NATS
// key-value buckets: workers announce what they can take (heartbeats), the
// scheduler publishes the queue waits it expects (for admission at the
// producer), and schedulers elect one leader with a lease.
package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names; their TTLs bound how stale an entry may be.
const (
	WorkersBucket = "inferq_workers"
	StateBucket   = "inferq_state"
	LeaseBucket   = "inferq_lease"
	// HeartbeatTTL is how long a worker counts after its last heartbeat.
	HeartbeatTTL = 10 * time.Second
	// LeaseTTL is how long a leader that stopped renewing keeps the lease
	// on a single NATS server: the standby takes over within about this
	// long.
	LeaseTTL = 3 * time.Second
	// ClusterLeaseTTL is LeaseTTL on a NATS cluster (replicas > 1). When
	// the node leading the lease's stream dies, no renewal succeeds until
	// the other replicas elect a new leader, and a leader that cannot renew
	// must stop before its lease can expire; elections took up to 6 s on
	// a loaded test machine (TestNATSRunLeaderKilled), so a 3 s lease made
	// the scheduler step down, dropping its queues, on every node loss.
	ClusterLeaseTTL = 10 * time.Second
)

// Buckets are the key-value buckets of one fleet.
type Buckets struct {
	Workers, State, Lease jetstream.KeyValue
	// LeaseTTL is the Lease bucket's TTL (LeaseTTL or ClusterLeaseTTL).
	LeaseTTL time.Duration
}

// Open creates or opens the fleet's buckets, with replicas copies each
// (0 or 1: one).
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Buckets, error) {
	replicas = max(replicas, 1)
	b := Buckets{LeaseTTL: LeaseTTL}
	if replicas > 1 {
		b.LeaseTTL = ClusterLeaseTTL
	}
	for _, c := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		// File storage for all three, small as they are: a memory bucket
		// vanishes when NATS restarts, and a scheduler that then re-leads
		// would find no worker capacity and dispatch nothing
		// (TestNATSDown).
		{&b.Workers, jetstream.KeyValueConfig{Bucket: WorkersBucket, TTL: HeartbeatTTL, Storage: jetstream.FileStorage}},
		{&b.State, jetstream.KeyValueConfig{Bucket: StateBucket, TTL: time.Minute, Storage: jetstream.FileStorage}},
		{&b.Lease, jetstream.KeyValueConfig{Bucket: LeaseBucket, TTL: b.LeaseTTL, Storage: jetstream.FileStorage}},
	} {
		c.cfg.Replicas = replicas
		kv, err := js.CreateOrUpdateKeyValue(ctx, c.cfg)
		if err != nil {
			return nil, fmt.Errorf("key-value bucket %s: %w", c.cfg.Bucket, err)
		}
		*c.kv = kv
	}
	return &b, nil
}

// ModelCapacity is what one worker (or, summed, the fleet) can do for one
// model.
type ModelCapacity struct {
	// Slots is how many jobs of the model it can hold at once: the batch in
	// each instance plus the one being prepared.
	Slots int `json:"slots"`
	// Rate is its measured throughput at full batches, jobs per second
	// (0 until measured).
	Rate float64 `json:"rate"`
	// Latency is the measured time of one full batch.
	Latency time.Duration `json:"latency"`
	// Workers counts the workers summed (1 in a heartbeat).
	Workers int `json:"workers"`
	// Version, MaxBatch and Busy describe one worker's loop of the model
	// for the console (a heartbeat only; Capacity leaves them zero):
	// the version it loads, its batch cap, and the share of the last
	// heartbeat interval its sessions spent in inference (0..1).
	Version  string  `json:"version,omitempty"`
	MaxBatch int     `json:"max_batch,omitempty"`
	Busy     float64 `json:"busy,omitempty"`
}

// Heartbeat is one worker's announcement.
type Heartbeat struct {
	Worker string                   `json:"worker"`
	Device string                   `json:"device"`
	Models map[string]ModelCapacity `json:"models"`
	At     time.Time                `json:"at"`
}

// Announce stores a worker's heartbeat.
func Announce(ctx context.Context, kv jetstream.KeyValue, hb Heartbeat) error {
	b, _ := json.Marshal(hb)
	_, err := kv.Put(ctx, hb.Worker, b)
	return err
}

// Withdraw removes a stopping worker's heartbeat, so that the scheduler
// stops counting it at once rather than after the TTL.
func Withdraw(ctx context.Context, kv jetstream.KeyValue, worker string) error {
	return kv.Delete(ctx, worker)
}

// Heartbeats reads every live worker's last heartbeat.
func Heartbeats(ctx context.Context, kv jetstream.KeyValue) ([]Heartbeat, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Heartbeat
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // expired or deleted between list and get
		}
		var hb Heartbeat
		if json.Unmarshal(e.Value(), &hb) != nil {
			continue
		}
		out = append(out, hb)
	}
	return out, nil
}

// Capacity sums the live heartbeats per model.
func Capacity(ctx context.Context, kv jetstream.KeyValue) (map[string]ModelCapacity, error) {
	hbs, err := Heartbeats(ctx, kv)
	if err != nil {
		return nil, err
	}
	out := map[string]ModelCapacity{}
	for _, hb := range hbs {
		for m, c := range hb.Models {
			sum := out[m]
			sum.Slots += c.Slots
			sum.Rate += c.Rate
			sum.Latency = max(sum.Latency, c.Latency)
			sum.Workers++
			out[m] = sum
		}
	}
	return out, nil
}

// estimatesKey holds the scheduler's expected waits.
const estimatesKey = "estimates"

// Estimates are expected waits from submit to result, by model and tier.
type Estimates map[string]map[string]time.Duration

// PublishEstimates stores the leader's current estimates.
func PublishEstimates(ctx context.Context, kv jetstream.KeyValue, e Estimates) error {
	b, _ := json.Marshal(e)
	_, err := kv.Put(ctx, estimatesKey, b)
	return err
}

// queuesKey holds the leader's queue snapshot.
const queuesKey = "queues"

// QueueStats is one model and tier's queue at the leader, as the
// scheduler's metrics show it.
type QueueStats struct {
	Model  string `json:"model"`
	Tier   string `json:"tier"`
	Queued int    `json:"queued"`
	Late   int    `json:"late"`
	// OldestWait is the age of the oldest held job; ExpectedWait what a
	// new job of the model and tier should expect.
	OldestWait   time.Duration `json:"oldest_wait"`
	ExpectedWait time.Duration `json:"expected_wait"`
}

// Queues is the leader's snapshot of its queues, published about once a
// second so that a reader (the console) learns queue depths without
// reading a job.
type Queues struct {
	Leader string       `json:"leader"`
	At     time.Time    `json:"at"`
	Stats  []QueueStats `json:"stats"`
	// Desired is the workers each model's queues ask for.
	Desired map[string]int `json:"desired,omitempty"`
}

// PublishQueues stores the leader's queue snapshot.
func PublishQueues(ctx context.Context, kv jetstream.KeyValue, q Queues) error {
	b, _ := json.Marshal(q)
	_, err := kv.Put(ctx, queuesKey, b)
	return err
}

// ReadQueues reads the last queue snapshot; ok is false when no leader
// published one within the bucket's TTL.
func ReadQueues(ctx context.Context, kv jetstream.KeyValue) (q Queues, ok bool, err error) {
	e, err := kv.Get(ctx, queuesKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return q, false, nil
	}
	if err != nil {
		return q, false, err
	}
	if err := json.Unmarshal(e.Value(), &q); err != nil {
		return q, false, fmt.Errorf("queue snapshot: %w", err)
	}
	return q, true, nil
}

// EstimateCache follows the published estimates, for the producer.
type EstimateCache struct {
	mu  sync.RWMutex
	est Estimates
}

// WatchEstimates keeps a cache of the estimates up to date until ctx ends.
func WatchEstimates(ctx context.Context, kv jetstream.KeyValue) (*EstimateCache, error) {
	w, err := kv.Watch(ctx, estimatesKey)
	if err != nil {
		return nil, err
	}
	c := &EstimateCache{}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				var est Estimates
				if e != nil && e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &est) == nil {
					c.mu.Lock()
					c.est = est
					c.mu.Unlock()
				}
			}
		}
	}()
	return c, nil
}

// Wait is the expected wait for a job of model and tier, and whether the
// scheduler has published one.
func (c *EstimateCache) Wait(model, tier string) (time.Duration, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.est[model][tier]
	return d, ok
}

// Lease is a leadership lease: one holder at a time, lost when the holder
// stops renewing for its bucket's TTL (Buckets.LeaseTTL).
type Lease struct {
	kv  jetstream.KeyValue
	key string
	id  string
	rev uint64
}

// NewLease returns holder id's handle on the lease called key.
func NewLease(kv jetstream.KeyValue, key, id string) *Lease {
	return &Lease{kv: kv, key: key, id: id}
}

// ErrLost means another holder has the lease.
var ErrLost = errors.New("lease lost")

// TryAcquire takes the lease if nobody holds it and reports whether it did.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	rev, err := l.kv.Create(ctx, l.key, []byte(l.id))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	l.rev = rev
	return true, nil
}

// Renew extends a held lease; ErrLost when someone else took it.
func (l *Lease) Renew(ctx context.Context) error {
	rev, err := l.kv.Update(ctx, l.key, []byte(l.id), l.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return ErrLost
	}
	if err != nil {
		return err
	}
	l.rev = rev
	return nil
}

// Release gives the lease up, so that a standby takes over at once.
func (l *Lease) Release(ctx context.Context) error {
	return l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
}

// Holder reads who holds the lease now ("" when nobody does).
func Holder(ctx context.Context, kv jetstream.KeyValue, key string) string {
	e, err := kv.Get(ctx, key)
	if err != nil {
		return ""
	}
	return string(e.Value())
}
