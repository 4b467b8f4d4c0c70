package scheduler

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The scheduler's part in ending orphans (jobs.PublishWithin says what an
// orphan is): every submitted job it receives is unmarked, and a probe is
// answered only after the jobs received ahead of it are, so that a mark
// still there when its probe arrives proves that the job's message was
// never stored. Both happen on the dispatch tick (every 25 ms), at once
// when a probe arrives, and when settleEvery jobs wait: one Redis round
// trip for any number of jobs, none on a submit's path. (Once per drain
// of the incoming messages, as first written, was nearly once per job at
// saturation, where drains hold a job or two.)
const settleEvery = 1000

// settle unmarks the jobs received since the last call and then answers
// the probes received with them.
func (s *Scheduler) settle(ctx context.Context) {
	if len(s.seen) > 0 {
		if err := s.cfg.Store.Unmark(ctx, s.seen...); err != nil {
			// The probes wait: answered now, one could take a job
			// received ahead of it for an orphan.
			s.log.Warn("unmark received jobs", "jobs", len(s.seen), "err", err)
			for _, p := range s.probes {
				_ = p.NakWithDelay(time.Second)
			}
			s.probes = s.probes[:0]
			return
		}
		s.seen = s.seen[:0]
	}
	for _, p := range s.probes {
		id := p.Headers().Get(jetstream.MsgIDHeader)
		orphan, err := s.cfg.Store.Probed(ctx, id)
		if err != nil {
			s.log.Warn("answer probe", "job", id, "err", err)
			_ = p.NakWithDelay(time.Second)
			continue
		}
		if orphan {
			s.log.Warn("job's message was never stored: an orphan for the sweep", "job", id)
		}
		_ = p.Ack()
	}
	s.probes = s.probes[:0]
}
