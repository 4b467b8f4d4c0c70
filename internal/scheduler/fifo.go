package scheduler

import "time"

// fifo is the first-in-first-out queue of one model.
type fifo struct{ items []held }

func (q *fifo) push(h held) { q.items = append(q.items, h) }
func (q *fifo) len() int    { return len(q.items) }

func (q *fifo) popN(n int) []held {
	n = min(n, len(q.items))
	out := append([]held(nil), q.items[:n]...)
	q.items = q.items[n:]
	return out
}

func (q *fifo) unshift(hs []held) {
	if len(hs) > 0 {
		q.items = append(append([]held(nil), hs...), q.items...)
	}
}

type tierStats struct {
	n      int
	oldest time.Duration
}

func (q *fifo) stats(now time.Time) map[string]tierStats {
	out := map[string]tierStats{}
	for _, h := range q.items {
		st := out[h.job.Tier]
		st.n++
		if age := now.Sub(h.job.CreatedAt); age > st.oldest {
			st.oldest = age
		}
		out[h.job.Tier] = st
	}
	return out
}
