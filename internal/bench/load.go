package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/inferq/inferq/client"
	"github.com/inferq/inferq/internal/blob"
)

// loadSpec tells a load generator what to do. Closed loop: Concurrency
// jobs in flight, each submitted as the previous ends, for Warmup then
// Window. Open loop: Poisson arrivals at Rate for Warmup then Window. Then
// it stops submitting and waits up to Drain for the jobs in flight, so
// that the next phase starts on an idle fleet.
type loadSpec struct {
	Target      string        `json:"target"` // "fleet" or "peer"
	Model       string        `json:"model"`
	Inputs      []string      `json:"inputs"` // files, cycled through
	ContentType string        `json:"content_type"`
	Concurrency int           `json:"concurrency"` // closed loop when > 0
	Rate        float64       `json:"rate"`        // open loop, jobs/s
	Mix         []tierShare   `json:"mix"`         // open loop tiers; default: one, Keys' first
	Warmup      time.Duration `json:"warmup"`
	Window      time.Duration `json:"window"`
	Drain       time.Duration `json:"drain"`
	Seed        uint64        `json:"seed"`
	Profile     string        `json:"profile,omitempty"` // CPU profile of this process

	// fleet
	URL  string            `json:"url,omitempty"`
	Keys map[string]string `json:"keys,omitempty"` // tier -> API key
	// peer
	Peer *peerConn `json:"peer,omitempty"`
}

type tierShare struct {
	Tier  string  `json:"tier"`
	Share float64 `json:"share"`
}

// peerConn is where the asynq peer keeps its inputs and tasks.
type peerConn struct {
	Redis string      `json:"redis"` // host:port
	S3    blob.Config `json:"s3"`
	// Inline carries the input in the task's payload instead of S3.
	Inline bool `json:"inline,omitempty"`
}

// loadResult is what a load generator saw.
type loadResult struct {
	Submitted  int      `json:"submitted"`
	Completed  int      `json:"completed"` // ended succeeded
	Failed     int      `json:"failed"`    // ended otherwise, or errored
	Unfinished int      `json:"unfinished"`
	Retries    int      `json:"retries"` // submits refused for a while (429/503) and retried
	Errors     []string `json:"errors,omitempty"`
	// The measured window: completions in it, its length, and the
	// latencies (submit to result seen by the client, ms) of the jobs
	// that ended in it (closed loop) or were submitted in it (open loop).
	InWindow  int       `json:"in_window"`
	WindowSec float64   `json:"window_sec"`
	Latencies []float64 `json:"latencies_ms,omitempty"`
	P50       float64   `json:"p50_ms"`
	P95       float64   `json:"p95_ms"`
	P99       float64   `json:"p99_ms"`
	// Makespan is first submit to last result, seconds.
	Makespan float64 `json:"makespan_sec"`
	// Tiers: per tier, every job of the run (open loop with a mix).
	Tiers map[string]*tierOutcome `json:"tiers,omitempty"`
}

type tierOutcome struct {
	Submitted int     `json:"submitted"`
	Finished  int     `json:"finished"`
	Met       int     `json:"met"`
	P99       float64 `json:"p99_ms"`
	lat       []float64
}

// Rate is the completions per second in the window.
func (r *loadResult) Rate() float64 { return div(float64(r.InWindow), r.WindowSec) }

// job is one submit-and-wait against a target.
type jobFunc func(ctx context.Context, tier string, input []byte) (met *bool, err error)

// errRefused is a submit the target refused for now (429, 503).
type errRefused struct{ after time.Duration }

func (e errRefused) Error() string { return fmt.Sprintf("refused, retry after %v", e.after) }

func runLoad(ctx context.Context, spec loadSpec) (*loadResult, error) {
	if spec.Profile != "" {
		f, err := os.Create(spec.Profile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var inputs [][]byte
	for _, p := range spec.Inputs {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, b)
	}
	if len(inputs) == 0 {
		return nil, errors.New("no inputs")
	}
	var do jobFunc
	var err error
	switch spec.Target {
	case "fleet":
		do = fleetJob(spec)
	case "peer":
		var closeFn func()
		do, closeFn, err = peerJob(spec)
		if err != nil {
			return nil, err
		}
		defer closeFn()
	default:
		return nil, fmt.Errorf("unknown target %q", spec.Target)
	}
	return drive(ctx, spec, inputs, do), nil
}

// outcome is one job as the generator saw it.
type outcome struct {
	tier       string
	start, end time.Time
	ok         bool
	met        *bool
	err        error
	retries    int
}

func drive(ctx context.Context, spec loadSpec, inputs [][]byte, do jobFunc) *loadResult {
	start := time.Now()
	winFrom, winTo := start.Add(spec.Warmup), start.Add(spec.Warmup+spec.Window)
	submitCtx, stopSubmit := context.WithDeadline(ctx, winTo)
	defer stopSubmit()
	// Jobs in flight at the end get Drain to finish; then they are
	// abandoned (and counted unfinished).
	jobCtx, cancelJobs := context.WithCancel(ctx)
	defer cancelJobs()

	var mu sync.Mutex
	var outs []outcome
	var seq int
	next := func() []byte {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return inputs[seq%len(inputs)]
	}
	one := func(tier string) {
		o := outcome{tier: tier, start: time.Now()}
		in := next()
		for {
			met, err := do(jobCtx, tier, in)
			var ref errRefused
			if errors.As(err, &ref) && submitCtx.Err() == nil {
				o.retries++
				sleepCtx(jobCtx, max(ref.after, 20*time.Millisecond))
				continue
			}
			o.end, o.met, o.err, o.ok = time.Now(), met, err, err == nil
			break
		}
		mu.Lock()
		outs = append(outs, o)
		mu.Unlock()
	}

	var wg sync.WaitGroup
	tiers := spec.Mix
	if len(tiers) == 0 {
		for t := range spec.Keys {
			tiers = []tierShare{{Tier: t, Share: 1}}
			break
		}
		if len(tiers) == 0 {
			tiers = []tierShare{{Tier: "", Share: 1}}
		}
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 7))
	pick := func() string {
		x := rng.Float64()
		for _, t := range tiers {
			if x < t.Share {
				return t.Tier
			}
			x -= t.Share
		}
		return tiers[len(tiers)-1].Tier
	}
	submitted := 0
	if spec.Concurrency > 0 {
		for range spec.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for submitCtx.Err() == nil {
					one(tiers[0].Tier)
				}
			}()
		}
	} else {
		at := start
		for {
			at = at.Add(time.Duration(rng.ExpFloat64() / spec.Rate * float64(time.Second)))
			if !at.Before(winTo) {
				break
			}
			sleepCtx(submitCtx, time.Until(at))
			if submitCtx.Err() != nil {
				break
			}
			tier := pick()
			submitted++
			wg.Add(1)
			go func() { defer wg.Done(); one(tier) }()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	<-submitCtx.Done()
	select {
	case <-done:
	case <-time.After(spec.Drain):
		cancelJobs()
		<-done
	}

	mu.Lock()
	defer mu.Unlock()
	res := &loadResult{WindowSec: spec.Window.Seconds(), Tiers: map[string]*tierOutcome{}}
	var first, last time.Time
	for _, o := range outs {
		if spec.Concurrency > 0 {
			submitted++
		}
		res.Retries += o.retries
		t := res.Tiers[o.tier]
		if t == nil {
			t = &tierOutcome{}
			res.Tiers[o.tier] = t
		}
		t.Submitted++
		if first.IsZero() || o.start.Before(first) {
			first = o.start
		}
		if o.end.After(last) {
			last = o.end
		}
		switch {
		case o.err != nil && jobCtx.Err() != nil && errors.Is(o.err, context.Canceled):
			res.Unfinished++
			continue
		case o.err != nil:
			res.Failed++
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, o.err.Error())
			}
			continue
		}
		res.Completed++
		t.Finished++
		lat := float64(o.end.Sub(o.start)) / 1e6
		t.lat = append(t.lat, lat)
		if o.met != nil && *o.met {
			t.Met++
		}
		inWin := !o.end.Before(winFrom) && !o.end.After(winTo)
		if inWin {
			res.InWindow++
		}
		if spec.Concurrency > 0 && inWin || spec.Concurrency == 0 && !o.start.Before(winFrom) {
			res.Latencies = append(res.Latencies, lat)
		}
	}
	res.Submitted = submitted
	res.Makespan = last.Sub(first).Seconds()
	res.P50, res.P95, res.P99 = percentile(res.Latencies, 50), percentile(res.Latencies, 95), percentile(res.Latencies, 99)
	for _, t := range res.Tiers {
		t.P99 = percentile(t.lat, 99)
	}
	return res
}

// MarshalJSON leaves NaN percentiles out of the helper's output.
func (r *loadResult) MarshalJSON() ([]byte, error) {
	type plain loadResult
	c := *r
	for _, p := range []*float64{&c.P50, &c.P95, &c.P99} {
		if *p != *p {
			*p = -1
		}
	}
	tiers := map[string]*tierOutcome{}
	for k, t := range c.Tiers {
		tc := *t
		if tc.P99 != tc.P99 {
			tc.P99 = -1
		}
		tiers[k] = &tc
	}
	c.Tiers = tiers
	return json.Marshal((*plain)(&c))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fleetJob submits through the producer's HTTP API and long-polls for the
// result, the way a client of the fleet does.
func fleetJob(spec loadSpec) jobFunc {
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute,
	}}
	clients := map[string]*client.Client{}
	for tier, key := range spec.Keys {
		c := client.New(spec.URL, key)
		c.HTTP = hc
		clients[tier] = c
	}
	name := "input" + filepath.Ext(spec.Inputs[0])
	return func(ctx context.Context, tier string, in []byte) (*bool, error) {
		c := clients[tier]
		if c == nil {
			return nil, fmt.Errorf("no key for tier %q", tier)
		}
		j, err := c.Submit(ctx, client.Submit{Model: spec.Model, Input: bytes.NewReader(in), FileName: name, ContentType: spec.ContentType})
		var ae *client.Error
		if errors.As(err, &ae) && (ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable) {
			return nil, errRefused{ae.RetryAfter}
		}
		if err != nil {
			return nil, err
		}
		if j, err = c.Wait(ctx, j.ID); err != nil {
			return nil, err
		}
		if j.Status != "succeeded" {
			msg := j.Status
			if j.Error != nil {
				msg += ": " + j.Error.Code + ": " + j.Error.Message
			}
			return j.MetDeadline, errors.New("job " + msg)
		}
		return j.MetDeadline, nil
	}
}

// The asynq peer's keys and task type.
const (
	peerTask       = "bench:infer"
	peerDonePrefix = "peer:done:"
	peerResult     = "peer:result:"
)

type peerPayload struct {
	ID          string `json:"id"`
	Key         string `json:"key,omitempty"`
	Data        []byte `json:"data,omitempty"` // the input itself, when it rides inline
	ContentType string `json:"ct"`
}

// peerJob is the client side of the pipeline a team would build by hand:
// put the input in S3, enqueue one asynq task naming it, and block on a
// Redis list the handler pushes to when the result is stored. Inline, the
// task carries the input itself, as a team would do for small inputs.
func peerJob(spec loadSpec) (jobFunc, func(), error) {
	rdb := redis.NewClient(&redis.Options{Addr: spec.Peer.Redis, PoolSize: 2*spec.Concurrency + 64})
	store, err := blob.Open(spec.Peer.S3)
	if err != nil {
		return nil, nil, err
	}
	ac := asynq.NewClientFromRedisClient(rdb)
	var n uint64
	var mu sync.Mutex
	prefix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	do := func(ctx context.Context, _ string, in []byte) (*bool, error) {
		mu.Lock()
		n++
		id := fmt.Sprintf("%s-%d", prefix, n)
		mu.Unlock()
		p := peerPayload{ID: id, ContentType: spec.ContentType}
		if spec.Peer.Inline {
			p.Data = in
		} else {
			p.Key = "inputs/peer/" + id
			if _, err := store.Put(ctx, p.Key, bytes.NewReader(in), int64(len(in)), spec.ContentType); err != nil {
				return nil, err
			}
		}
		payload, _ := json.Marshal(p)
		if _, err := ac.EnqueueContext(ctx, asynq.NewTask(peerTask, payload), asynq.MaxRetry(3), asynq.Timeout(2*time.Minute)); err != nil {
			return nil, err
		}
		var v []string
		for {
			// Short blocks, so that a canceled wait ends (a blocked
			// BLPOP does not see its context).
			v, err = rdb.BLPop(ctx, time.Second, peerDonePrefix+id).Result()
			if errors.Is(err, redis.Nil) && ctx.Err() == nil {
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, err
			}
			break
		}
		if len(v) == 2 && v[1] != "ok" {
			return nil, errors.New("peer job failed: " + v[1])
		}
		return nil, nil
	}
	return do, func() { _ = ac.Close(); _ = rdb.Close() }, nil
}
