package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inferq/inferq/internal/queue"
)

// watcher wakes the requests that wait on jobs (?wait=, SSE) with their
// jobs' events. It holds one NATS subscription per tenant that has
// waiters (jobs.events.<tenant>.*), not one per waiting request: a
// subscription per request cost a subscribe, a flush round trip and an
// unsubscribe on every long-poll, and churned the server's interest
// tables at the rate jobs finish. A tenant's subscription outlives its
// last waiter by watchLinger, so a steady stream of waits subscribes once.
type watcher struct {
	nc      *nats.Conn
	mu      sync.Mutex
	tenants map[string]*tenantWatch
}

// tenantWatch is one tenant's subscription and its waiters by job id.
type tenantWatch struct {
	sub     *nats.Subscription
	waiters map[string]map[chan queue.Event]struct{}
	count   int
	idle    *time.Timer
}

// watchLinger is how long a tenant's subscription is kept with no waiter.
const watchLinger = time.Minute

func newWatcher(nc *nats.Conn) *watcher {
	return &watcher{nc: nc, tenants: map[string]*tenantWatch{}}
}

// watch registers a waiter for job id of tenant and returns its events and
// the function that ends the wait. When watch returns, the subscription is
// live at the server: an event published after that reaches the waiter, so
// a caller that reads the record after watch misses no change.
func (w *watcher) watch(tenant, id string) (<-chan queue.Event, func(), error) {
	ch := make(chan queue.Event, 16)
	w.mu.Lock()
	defer w.mu.Unlock()
	tw := w.tenants[tenant]
	if tw == nil {
		tw = &tenantWatch{waiters: map[string]map[chan queue.Event]struct{}{}}
		sub, err := w.nc.Subscribe(queue.EventSubject(tenant, "*"), w.deliver(tenant))
		if err != nil {
			return nil, nil, fmt.Errorf("watch %s: %w", tenant, err)
		}
		if err := w.nc.FlushTimeout(2 * time.Second); err != nil {
			_ = sub.Unsubscribe()
			return nil, nil, fmt.Errorf("watch %s: %w", tenant, err)
		}
		tw.sub = sub
		w.tenants[tenant] = tw
	}
	if tw.idle != nil {
		tw.idle.Stop()
		tw.idle = nil
	}
	if tw.waiters[id] == nil {
		tw.waiters[id] = map[chan queue.Event]struct{}{}
	}
	tw.waiters[id][ch] = struct{}{}
	tw.count++
	var once sync.Once
	stop := func() { once.Do(func() { w.unwatch(tenant, id, ch) }) }
	return ch, stop, nil
}

func (w *watcher) unwatch(tenant, id string, ch chan queue.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tw := w.tenants[tenant]
	if tw == nil {
		return
	}
	delete(tw.waiters[id], ch)
	if len(tw.waiters[id]) == 0 {
		delete(tw.waiters, id)
	}
	tw.count--
	if tw.count > 0 {
		return
	}
	tw.idle = time.AfterFunc(watchLinger, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.tenants[tenant] == tw && tw.count == 0 {
			_ = tw.sub.Unsubscribe()
			delete(w.tenants, tenant)
		}
	})
}

// deliver hands an event to the waiters of its job. A waiter that is
// behind loses the event, never its wake-up: its channel holds the ones
// before, and waiters read the record, the truth, when they wake.
func (w *watcher) deliver(tenant string) nats.MsgHandler {
	return func(m *nats.Msg) {
		id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		w.mu.Lock()
		defer w.mu.Unlock()
		tw := w.tenants[tenant]
		if tw == nil || len(tw.waiters[id]) == 0 {
			return
		}
		var ev queue.Event
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		for ch := range tw.waiters[id] {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}
