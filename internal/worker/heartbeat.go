package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/coord"
)

// heartbeatEvery is how often a worker announces its capacity.
const heartbeatEvery = 2 * time.Second

func workerID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// loopSet is the models this worker serves so far; added wakes the
// heartbeats when one more is served.
type loopSet struct {
	mu    sync.Mutex
	loops []*modelLoop
	added chan struct{}
}

func (s *loopSet) add(l *modelLoop) {
	s.mu.Lock()
	s.loops = append(s.loops, l)
	s.mu.Unlock()
	select {
	case s.added <- struct{}{}:
	default:
	}
}

func (s *loopSet) all() []*modelLoop {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*modelLoop(nil), s.loops...)
}

// heartbeats announces, until ctx ends, what this worker can take of each
// model it serves: the slots the scheduler may fill (a batch per instance
// plus the one being prepared) and the measured throughput. A model
// served anew is announced at once. Then it withdraws.
func (w *Worker) heartbeats(ctx context.Context, kv jetstream.KeyValue, loops *loopSet) {
	id := workerID()
	last := time.Now()
	announce := func() {
		now := time.Now()
		elapsed := now.Sub(last)
		last = now
		hb := coord.Heartbeat{Worker: id, Device: w.cfg.Device, Models: map[string]coord.ModelCapacity{}, At: now}
		for _, l := range loops.all() {
			maxBatch, _, err := l.limits()
			if err != nil {
				continue
			}
			rate, lat := l.service.Throughput(maxBatch)
			// Busy is the share of the interval the model's sessions ran
			// inference, for the console.
			busy := 0.0
			if elapsed > 0 {
				busy = min(1, float64(l.busyNS.Swap(0))/float64(elapsed)/float64(w.cfg.Instances))
			}
			hb.Models[l.model] = coord.ModelCapacity{Slots: maxBatch * (w.cfg.Instances + 1), Rate: rate, Latency: lat, Workers: 1,
				Version: l.version(), MaxBatch: maxBatch, Busy: busy}
		}
		if len(hb.Models) == 0 {
			return
		}
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := coord.Announce(actx, kv, hb); err != nil {
			w.log.Warn("heartbeat", "err", err)
		}
	}
	announce()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = coord.Withdraw(wctx, kv, id)
			return
		case <-t.C:
		case <-loops.added:
		}
		announce()
	}
}

// version is the model version the loop runs now ("" when unknown).
func (l *modelLoop) version() string {
	m, release, err := l.w.cfg.Registry.Acquire(l.model)
	if err != nil {
		return ""
	}
	defer release()
	return m.Manifest.Version
}
