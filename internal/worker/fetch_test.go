package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inferq/inferq/internal/fleettest"
)

// spyConsumer records the batch sizes the worker asks a real consumer for.
type spyConsumer struct {
	jetstream.Consumer
	mu    sync.Mutex
	asked []int
}

func (s *spyConsumer) note(n int) {
	s.mu.Lock()
	s.asked = append(s.asked, n)
	s.mu.Unlock()
}

func (s *spyConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	s.note(n)
	return s.Consumer.Fetch(n, opts...)
}

func (s *spyConsumer) FetchNoWait(n int) (jetstream.MessageBatch, error) {
	s.note(n)
	return s.Consumer.FetchNoWait(n)
}

// TestFetchNeverAsksForNothing: with batching off (max_batch 1) the worker
// takes its one job and asks for no more; a fetch of zero messages is not
// free (it waits out its expiry, a second a batch) and must never be sent.
func TestFetchNeverAsksForNothing(t *testing.T) {
	nc := fleettest.NATS(t)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyConsumer{Consumer: cons}
	l := &modelLoop{cons: spy}
	for _, queued := range []int{0, 1, 3} {
		spy.asked = nil
		for range queued {
			if _, err := js.Publish(ctx, "t.x", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		if queued == 0 {
			// Nothing queued: the blocking fetch must find the job that
			// arrives while it waits.
			go func() {
				time.Sleep(200 * time.Millisecond)
				_, _ = js.Publish(ctx, "t.x", []byte(`{}`))
			}()
		}
		for left := max(queued, 1); left > 0; {
			msgs, err := l.fetchBatch(ctx, 1, 5*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				_ = m.Ack()
			}
			left -= len(msgs)
		}
		for _, n := range spy.asked {
			if n < 1 {
				t.Fatalf("with %d queued, the worker asked for %v: a fetch of nothing", queued, spy.asked)
			}
		}
	}
}
