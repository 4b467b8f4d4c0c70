package sla

import "time"

// entry is one queued job. Times are Unix nanoseconds so that the heaps
// compare integers, not time.Time values.
type entry struct {
	job      Job
	tier     int
	seq      uint64 // push order: the tie-break everywhere
	arrival  int64
	deadline int64
	late     bool     // demoted behind the jobs that can still make it
	key      [2]int64 // ordering key per heap slot
	pos      [2]int   // index in the heap of each slot
}

// Heap slots: an entry sits in at most one ordering heap (slot 0) and in its
// tier's arrival heap (slot 1) at the same time.
const (
	slotOrder = iota
	slotArrival
)

// jobHeap is a binary min-heap of entries on key[slot], ties broken by push
// order, that knows each entry's position so that Remove is O(log n).
type jobHeap struct {
	slot  int
	items []*entry
}

func (h *jobHeap) len() int { return len(h.items) }

func (h *jobHeap) peek() *entry { return h.items[0] }

func (h *jobHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if ka, kb := a.key[h.slot], b.key[h.slot]; ka != kb {
		return ka < kb
	}
	return a.seq < b.seq
}

func (h *jobHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].pos[h.slot] = i
	h.items[j].pos[h.slot] = j
}

func (h *jobHeap) push(e *entry) {
	e.pos[h.slot] = len(h.items)
	h.items = append(h.items, e)
	h.up(len(h.items) - 1)
}

func (h *jobHeap) pop() *entry {
	e := h.items[0]
	h.remove(e)
	return e
}

func (h *jobHeap) remove(e *entry) {
	i, n := e.pos[h.slot], len(h.items)-1
	if i != n {
		h.swap(i, n)
	}
	h.items[n] = nil
	h.items = h.items[:n]
	if i < n && !h.down(i) {
		h.up(i)
	}
	e.pos[h.slot] = -1
}

func (h *jobHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *jobHeap) down(i int) bool {
	start, n := i, len(h.items)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h.less(r, c) {
			c = r
		}
		if !h.less(c, i) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}

// book is what every policy keeps besides its order: jobs by id (for Remove
// and dedupe), the tiers seen, and per tier a heap by arrival (for
// OldestWait).
type book struct {
	byID   map[string]*entry
	names  []string
	index  map[string]int
	oldest []jobHeap
	seq    uint64
}

func newBook(tiers []string) book {
	b := book{byID: make(map[string]*entry), index: make(map[string]int)}
	for _, n := range tiers {
		b.tier(n)
	}
	return b
}

// tier returns the index of a tier, adding it (last) when it is new.
func (b *book) tier(name string) int {
	if i, ok := b.index[name]; ok {
		return i
	}
	i := len(b.names)
	b.names = append(b.names, name)
	b.index[name] = i
	b.oldest = append(b.oldest, jobHeap{slot: slotArrival})
	return i
}

// add records a job, or returns nil when its id is already queued.
func (b *book) add(j Job, now time.Time) *entry {
	if _, dup := b.byID[j.ID]; dup {
		return nil
	}
	if j.Arrival.IsZero() {
		j.Arrival = now
	}
	e := &entry{job: j, tier: b.tier(j.Tier), seq: b.seq, arrival: j.Arrival.UnixNano()}
	b.seq++
	e.deadline = e.arrival
	if !j.Deadline.IsZero() {
		e.deadline = j.Deadline.UnixNano()
	}
	e.key[slotArrival] = e.arrival
	b.byID[j.ID] = e
	b.oldest[e.tier].push(e)
	return e
}

// forget drops a job that has left the queue.
func (b *book) forget(e *entry) {
	delete(b.byID, e.job.ID)
	b.oldest[e.tier].remove(e)
}

func (b *book) stats(now time.Time) []TierStats {
	out := make([]TierStats, len(b.names))
	n := now.UnixNano()
	for i, name := range b.names {
		s := TierStats{Tier: name, Queued: b.oldest[i].len()}
		if s.Queued > 0 {
			s.OldestWait = max(time.Duration(n-b.oldest[i].peek().arrival), 0)
		}
		out[i] = s
	}
	return out
}
