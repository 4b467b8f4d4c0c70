package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/queue"
)

// progressEvery bounds how often one document's progress is written and
// announced: a document of thousands of tiny pages must not turn into
// thousands of Redis writes a second. The last page is always told.
const progressEvery = 250 * time.Millisecond

// progress returns what a document job's pipeline calls as its pages are
// read: the record's progress and an event for SSE watchers. The writes
// run off the model's goroutine, one at a time, newest wins. It answers
// false once a write found the job ended (a cancel): the pages not yet
// read are not read.
func (w *Worker) progress(m jobs.Message) func(done, total int) bool {
	var (
		stop    atomic.Bool // the job ended elsewhere (canceled): read no further
		mu      sync.Mutex
		last    time.Time
		pending *jobs.Progress
		busy    bool
	)
	flush := func() {
		for {
			mu.Lock()
			p := pending
			pending = nil
			if p == nil {
				busy = false
				mu.Unlock()
				return
			}
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ended, err := w.cfg.Store.SetProgress(ctx, m.ID, *p)
			if err != nil {
				w.log.Warn("record progress", "job", m.ID, "err", err)
			}
			cancel()
			if ended {
				// Its end was told already: no progress after it.
				stop.Store(true)
				continue
			}
			queue.PublishProgress(w.cfg.NATS, m.Tenant, m.ID, *p, time.Now())
		}
	}
	return func(done, total int) bool {
		mu.Lock()
		defer mu.Unlock()
		if done < total && time.Since(last) < progressEvery {
			return !stop.Load()
		}
		last = time.Now()
		pending = &jobs.Progress{PagesDone: done, Pages: total}
		if !busy {
			busy = true
			go flush()
		}
		return !stop.Load()
	}
}
