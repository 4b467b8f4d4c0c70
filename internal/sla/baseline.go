package sla

import "time"

// The baselines the simulator compares inferq's policy with. They are real
// policies (a scheduler could run them) but they ignore capacity.

type baselineKind int

const (
	kindFIFO baselineKind = iota
	kindStrict
	kindEDF
)

type baseline struct {
	book
	kind baselineKind
	// queues holds one heap for FIFO and EDF, one per tier (in priority
	// order) for strict priority.
	queues []jobHeap
}

// NewFIFO returns a first-in-first-out policy: jobs leave in push order,
// whatever their tier.
func NewFIFO() Policy {
	return &baseline{book: newBook(nil), kind: kindFIFO, queues: []jobHeap{{slot: slotOrder}}}
}

// NewStrictPriority returns strict priority across tiers (asynq's
// StrictPriority, Triton's priority_levels): a tier is served only when every
// tier before it in tiers is empty; first-in-first-out within a tier. Tiers
// not listed come last, in the order first seen.
func NewStrictPriority(tiers []Tier) Policy {
	names := make([]string, len(tiers))
	for i, t := range tiers {
		names[i] = t.Name
	}
	b := &baseline{book: newBook(names), kind: kindStrict}
	b.grow()
	return b
}

// NewEDF returns plain earliest-deadline-first across all tiers, with no
// notion of tiers, shares or jobs that cannot make it.
func NewEDF() Policy {
	return &baseline{book: newBook(nil), kind: kindEDF, queues: []jobHeap{{slot: slotOrder}}}
}

func (b *baseline) grow() {
	for len(b.queues) < len(b.names) {
		b.queues = append(b.queues, jobHeap{slot: slotOrder})
	}
}

func (b *baseline) queue(e *entry) *jobHeap {
	if b.kind == kindStrict {
		return &b.queues[e.tier]
	}
	return &b.queues[0]
}

func (b *baseline) Push(j Job, now time.Time) {
	e := b.add(j, now)
	if e == nil {
		return
	}
	switch b.kind {
	case kindStrict:
		b.grow()
		e.key[slotOrder] = 0 // push order within the tier
	case kindEDF:
		e.key[slotOrder] = e.deadline
	default:
		e.key[slotOrder] = 0
	}
	b.queue(e).push(e)
}

func (b *baseline) Pop(time.Time) (Job, bool) {
	for i := range b.queues {
		if q := &b.queues[i]; q.len() > 0 {
			e := q.pop()
			b.forget(e)
			return e.job, true
		}
	}
	return Job{}, false
}

func (b *baseline) Remove(id string) bool {
	e, ok := b.byID[id]
	if !ok {
		return false
	}
	b.queue(e).remove(e)
	b.forget(e)
	return true
}

func (b *baseline) Len() int { return len(b.byID) }

func (b *baseline) SetCapacity(float64, time.Duration) {}

func (b *baseline) Stats(now time.Time) []TierStats { return b.stats(now) }
