package api

import (
	"testing"
	"time"

	"github.com/inferq/inferq/internal/jobs"
)

type fixedWaits map[string]time.Duration

func (f fixedWaits) Wait(model, tier string) (time.Duration, bool) {
	d, ok := f[model+"/"+tier]
	return d, ok
}

func TestEstimate(t *testing.T) {
	created := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := &Server{cfg: Config{Estimates: fixedWaits{"ocr/bulk": 90 * time.Second, "ocr/premium": 0}}}
	j := &jobs.Job{Model: "ocr", Tier: "bulk", CreatedAt: created, Deadline: created.Add(time.Minute)}
	if got := s.estimate(j); !got.Equal(created.Add(90 * time.Second)) {
		t.Fatalf("estimate %s: want the scheduler's 90s, even past the deadline", got)
	}
	j.Tier = "premium" // published as zero: not measured yet
	if got := s.estimate(j); !got.Equal(created.Add(time.Second)) {
		t.Fatalf("estimate without a measure: %s", got)
	}
	s.cfg.Estimates = nil
	if got := s.estimate(j); !got.Equal(created.Add(time.Second)) {
		t.Fatalf("estimate without a scheduler: %s", got)
	}
}
