package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
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

// heartbeats announces, until ctx ends, what this worker can take of each
// model: the slots the scheduler may fill (a batch per instance plus the
// one being prepared) and the measured throughput. Then it withdraws.
func (w *Worker) heartbeats(ctx context.Context, kv jetstream.KeyValue, loops []*modelLoop) {
	id := workerID()
	announce := func() {
		hb := coord.Heartbeat{Worker: id, Device: w.cfg.Device, Models: map[string]coord.ModelCapacity{}, At: time.Now()}
		for _, l := range loops {
			maxBatch, _, err := l.limits()
			if err != nil {
				continue
			}
			rate, lat := l.service.Throughput(maxBatch)
			hb.Models[l.model] = coord.ModelCapacity{Slots: maxBatch * (w.cfg.Instances + 1), Rate: rate, Latency: lat, Workers: 1}
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
			announce()
		}
	}
}
