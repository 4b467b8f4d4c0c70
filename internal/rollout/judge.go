package rollout

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Judge runs the policy over every running rollout; the scheduler's
// leader runs it, and since all its state is in Redis a new leader (or a
// restarted scheduler) resumes every rollout where it stood.
type Judge struct {
	Store      *Store
	Thresholds Thresholds
	// Every is how often rollouts are judged (0: 5 s).
	Every time.Duration
	Log   *slog.Logger

	decisions *prometheus.CounterVec
	running   *prometheus.GaugeVec
}

// NewJudge builds a judge whose metrics go to reg (nil: none).
func NewJudge(store *Store, t Thresholds, every time.Duration, log *slog.Logger, reg prometheus.Registerer) *Judge {
	j := &Judge{Store: store, Thresholds: t, Every: every, Log: log,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inferq_rollout_decisions_total",
			Help: "Rollouts ended by the judge, by model and outcome (promoted, rolled_back)."}, []string{"model", "status"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "inferq_rollout_running",
			Help: "1 while a rollout of the model runs, as the leader last saw it."}, []string{"model", "from", "to"}),
	}
	if j.Every <= 0 {
		j.Every = 5 * time.Second
	}
	if reg != nil {
		reg.MustRegister(j.decisions, j.running)
	}
	return j
}

// Run judges until ctx ends (the end of leadership).
func (j *Judge) Run(ctx context.Context) {
	t := time.NewTicker(j.Every)
	defer t.Stop()
	defer j.running.Reset()
	for {
		if err := j.Once(ctx, time.Now()); err != nil && ctx.Err() == nil {
			j.Log.Warn("judge rollouts", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once judges every running rollout at now.
func (j *Judge) Once(ctx context.Context, now time.Time) error {
	all, err := j.Store.List(ctx)
	if err != nil {
		return err
	}
	j.running.Reset()
	for _, st := range all {
		if st.Status != Running {
			continue
		}
		v := Decide(st, now, j.Thresholds)
		status := Promoted
		switch v.Action {
		case Hold:
			j.running.WithLabelValues(st.Model, st.From, st.To).Set(1)
			continue
		case RollBack:
			status = RolledBack
		}
		if err := j.Store.Decide(ctx, st.Model, st.To, status, v.Reason, now); err != nil {
			j.Log.Warn("decide rollout", "model", st.Model, "to", st.To, "err", err)
			continue
		}
		j.decisions.WithLabelValues(st.Model, string(status)).Inc()
		j.Log.Info("rollout "+string(status), "model", st.Model, "from", st.From, "to", st.To, "reason", v.Reason)
	}
	return nil
}
