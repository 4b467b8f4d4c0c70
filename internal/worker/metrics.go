package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferq/inferq/internal/jobs"
	"github.com/inferq/inferq/internal/ort"
)

type metrics struct {
	batchSize *prometheus.HistogramVec
	inference *prometheus.HistogramVec
	queueWait *prometheus.HistogramVec
	latency   *prometheus.HistogramVec
	jobs      *prometheus.CounterVec
	dead      *prometheus.CounterVec
	busy      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, device string) *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inferq_worker_batch_size", Help: "Jobs per inference run, by model.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}, []string{"model"}),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inferq_worker_inference_seconds", Help: "Time of one batch's inference run, by model.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"model"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inferq_worker_queue_wait_seconds", Help: "Time from submit to the start of the run, by model.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, []string{"model"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "inferq_job_latency_seconds", Help: "Time from submit to result, by model and tier.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 22),
		}, []string{"model", "tier"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferq_worker_jobs_total", Help: "Jobs finished by this worker, by model, tier, status and whether they met their deadline.",
		}, []string{"model", "tier", "status", "met_deadline"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inferq_jobs_dead_lettered_total", Help: "Jobs ended failed/max_attempts after MaxDeliver deliveries (they kept killing workers), by model.",
		}, []string{"model"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inferq_worker_busy_seconds_total", Help: "Seconds the device spent in inference; its rate is the busy ratio.",
			ConstLabels: prometheus.Labels{"device": device},
		}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "inferq_worker_info", Help: "The worker's device and ONNX Runtime version (always 1).",
		ConstLabels: prometheus.Labels{"device": device, "ort_version": ort.Version()},
	})
	info.Set(1)
	reg.MustRegister(m.batchSize, m.inference, m.queueWait, m.latency, m.jobs, m.dead, m.busy, info)
	return m
}

func (m *metrics) observeBatch(model string, n int, d time.Duration) {
	m.batchSize.WithLabelValues(model).Observe(float64(n))
	m.inference.WithLabelValues(model).Observe(d.Seconds())
	m.busy.Add(d.Seconds())
}

func (m *metrics) finished(model, tier string, st jobs.State, met bool, latency time.Duration) {
	ms := "false"
	if met {
		ms = "true"
	}
	m.jobs.WithLabelValues(model, tier, string(st), ms).Inc()
	m.latency.WithLabelValues(model, tier).Observe(latency.Seconds())
}
