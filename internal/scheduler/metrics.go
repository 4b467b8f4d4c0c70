package scheduler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferq/inferq/internal/coord"
	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/sla"
)

type metrics struct {
	dispatched *prometheus.CounterVec
	depth      *prometheus.GaugeVec
	late       *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
	wait       *prometheus.GaugeVec
	desired    *prometheus.GaugeVec
	slots      *prometheus.GaugeVec
	leader     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, store *jobs.Store) *metrics {
	m := &metrics{
		dispatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferq_scheduler_dispatched_total", Help: "Jobs released to workers, by model and tier.",
		}, []string{"model", "tier"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_queue_depth_jobs", Help: "Jobs held by the scheduler, not yet dispatched, by model and tier.",
		}, []string{"model", "tier"}),
		late: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_queue_late_jobs", Help: "Held jobs judged unable to meet their deadline (moved behind the others), by model and tier.",
		}, []string{"model", "tier"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_queue_oldest_wait_seconds", Help: "Age of the oldest held job, by model and tier.",
		}, []string{"model", "tier"}),
		wait: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_expected_wait_seconds", Help: "Expected time from submit to result for a new job, by model and tier (what admission tells clients).",
		}, []string{"model", "tier"}),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_desired_workers", Help: "Workers of each model the queues ask for to meet the deadlines (for autoscaling).",
		}, []string{"model"}),
		slots: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "inferq_worker_slots", Help: "Jobs the live workers can hold at once, by model (the dispatch window).",
		}, []string{"model"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inferq_scheduler_leader", Help: "1 while this scheduler holds the lease and dispatches.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.dispatched, m.depth, m.late, m.oldest, m.wait, m.desired, m.slots, m.leader, &slaCollector{store: store})
	}
	return m
}

func (m *metrics) observe(now time.Time, queues map[string]*modelQueue, capacity map[string]coord.ModelCapacity, tiers []sla.Tier) {
	m.depth.Reset()
	m.late.Reset()
	m.oldest.Reset()
	m.wait.Reset()
	m.desired.Reset()
	m.slots.Reset()
	for model, c := range capacity {
		m.slots.WithLabelValues(model).Set(float64(c.Slots))
	}
	for model, q := range queues {
		for _, st := range q.policy.Stats(now) {
			m.depth.WithLabelValues(model, st.Tier).Set(float64(st.Queued))
			m.late.WithLabelValues(model, st.Tier).Set(float64(st.Late))
			m.oldest.WithLabelValues(model, st.Tier).Set(st.OldestWait.Seconds())
		}
		for _, t := range tiers {
			m.wait.WithLabelValues(model, t.Name).Set(q.expectedWait(t.Name, now, capacity[model]).Seconds())
		}
		m.desired.WithLabelValues(model).Set(float64(q.desiredWorkers(now, capacity[model], tiers)))
	}
}

func (m *metrics) clear() {
	m.depth.Reset()
	m.late.Reset()
	m.oldest.Reset()
	m.wait.Reset()
	m.desired.Reset()
}

// slaCollector exports the fleet's deadline record from Redis on each
// scrape: finished and met counts per model and tier (goodput is the rate
// of the met count), and attainment.
type slaCollector struct{ store *jobs.Store }

var (
	finishedDesc   = prometheus.NewDesc("inferq_sla_jobs_finished_total", "Jobs finished (any terminal state), by model and tier, fleet-wide.", []string{"model", "tier"}, nil)
	metDesc        = prometheus.NewDesc("inferq_sla_jobs_met_deadline_total", "Jobs finished within their deadline, by model and tier, fleet-wide; its rate is the goodput.", []string{"model", "tier"}, nil)
	attainmentDesc = prometheus.NewDesc("inferq_sla_attainment_ratio", "Met-deadline jobs over finished jobs, by model and tier, fleet-wide since the start.", []string{"model", "tier"}, nil)
)

func (c *slaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- finishedDesc
	ch <- metDesc
	ch <- attainmentDesc
}

func (c *slaCollector) Collect(ch chan<- prometheus.Metric) {
	if c.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	counts, err := c.store.SLACounts(ctx)
	if err != nil {
		return
	}
	for _, s := range counts {
		ch <- prometheus.MustNewConstMetric(finishedDesc, prometheus.CounterValue, float64(s.Finished), s.Model, s.Tier)
		ch <- prometheus.MustNewConstMetric(metDesc, prometheus.CounterValue, float64(s.Met), s.Model, s.Tier)
		if s.Finished > 0 {
			ch <- prometheus.MustNewConstMetric(attainmentDesc, prometheus.GaugeValue, float64(s.Met)/float64(s.Finished), s.Model, s.Tier)
		}
	}
}
