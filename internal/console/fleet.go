package console

import (
	"context"
	"html/template"
	"net/http"
	"sort"
	"time"

	"github.com/inferq/inferq/internal/coord"
)

// The fleet page reads, whatever the number of queued jobs: the
// scheduler's queue snapshot (one KV get), the workers' heartbeats (one
// KV get per live worker), the lease (one KV get) and this process's
// attainment history (memory). It never reads a job.

type queueRow struct {
	Model, Tier      string
	Queued, Late     int
	Oldest, Expected time.Duration
	Rate             float64 // jobs finished per second, last minute
	Att5m, Att1h     string
	Plot             template.HTML
}

type workerModel struct {
	Name, Version string
	MaxBatch      int
	Slots         int
	Rate          float64
	Busy          int // percent
}

type workerRow struct {
	ID, Device string
	Seen       time.Duration
	Models     []workerModel
}

type fleetView struct {
	At          time.Time
	Leader      string
	Snapshot    bool          // a leader published its queues
	SnapshotAge time.Duration // how old that snapshot is
	Rows        []queueRow
	Workers     []workerRow
	Queued      int
}

func pct(w window) string {
	a, ok := w.Attainment()
	if !ok {
		return "—"
	}
	return template.HTMLEscapeString(formatPct(a))
}

func (c *Console) fleet(ctx context.Context) (*fleetView, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	now := time.Now()
	v := &fleetView{At: now}
	q, ok, err := coord.ReadQueues(ctx, c.cfg.KV.State)
	if err != nil {
		return nil, wrap(err, "queue snapshot")
	}
	v.Snapshot, v.SnapshotAge = ok, now.Sub(q.At).Round(time.Second)
	v.Leader = coord.Holder(ctx, c.cfg.KV.Lease, "scheduler")
	rows := map[mt]*queueRow{}
	row := func(k mt) *queueRow {
		r := rows[k]
		if r == nil {
			r = &queueRow{Model: k.Model, Tier: k.Tier}
			rows[k] = r
		}
		return r
	}
	for _, s := range q.Stats {
		r := row(mt{s.Model, s.Tier})
		r.Queued, r.Late, r.Oldest, r.Expected = s.Queued, s.Late, s.OldestWait.Round(100*time.Millisecond), s.ExpectedWait.Round(100*time.Millisecond)
		v.Queued += s.Queued
	}
	for k := range c.history.keys() {
		row(k)
	}
	for k, r := range rows {
		r.Rate = c.history.over(k, time.Minute).Rate()
		r.Att5m, r.Att1h = pct(c.history.over(k, 5*time.Minute)), pct(c.history.over(k, time.Hour))
		r.Plot = c.history.plot(k, now)
		v.Rows = append(v.Rows, *r)
	}
	sort.Slice(v.Rows, func(i, j int) bool {
		a, b := v.Rows[i], v.Rows[j]
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return c.tierOrder(a.Tier) < c.tierOrder(b.Tier)
	})
	hbs, err := coord.Heartbeats(ctx, c.cfg.KV.Workers)
	if err != nil {
		return nil, wrap(err, "worker heartbeats")
	}
	for _, hb := range hbs {
		w := workerRow{ID: hb.Worker, Device: hb.Device, Seen: now.Sub(hb.At).Round(time.Second)}
		for name, m := range hb.Models {
			w.Models = append(w.Models, workerModel{Name: name, Version: m.Version, MaxBatch: m.MaxBatch, Slots: m.Slots,
				Rate: m.Rate, Busy: int(m.Busy*100 + 0.5)})
		}
		sort.Slice(w.Models, func(i, j int) bool { return w.Models[i].Name < w.Models[j].Name })
		v.Workers = append(v.Workers, w)
	}
	sort.Slice(v.Workers, func(i, j int) bool { return v.Workers[i].ID < v.Workers[j].ID })
	return v, nil
}

// tierOrder sorts tiers by deadline, tightest first.
func (c *Console) tierOrder(name string) time.Duration {
	if t, ok := c.cfg.Tenants.Tier(name); ok {
		return t.Deadline
	}
	return 1 << 62
}

func (c *Console) fleetPage(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.fleet(r.Context())
	if err != nil {
		c.fail(w, r, s, http.StatusServiceUnavailable, err.Error())
		return
	}
	c.render(w, http.StatusOK, "fleet", s, map[string]any{"Fleet": v, "Live": "/ui/fleet/live"})
}

func (c *Console) fleetLive(w http.ResponseWriter, r *http.Request, s *session) {
	c.live(w, r, func(ctx context.Context) ([]fragment, error) {
		v, err := c.fleet(ctx)
		if err != nil {
			return nil, err
		}
		return c.fragments("fleet", map[string]any{"Fleet": v}, "fleet-body")
	})
}
