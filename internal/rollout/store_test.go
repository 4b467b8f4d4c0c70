package rollout

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/inferq/inferq/internal/fleettest"
)

func TestStore(t *testing.T) {
	rdb := fleettest.Redis(t)
	ctx := context.Background()
	s := NewStore(rdb)
	now := time.Now().Truncate(time.Millisecond)
	st, err := Spec{Canary: "10%", For: "1m", Shadow: "5%"}.Parse("digits", "1", "2", now)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "digits"); got != nil || err != nil {
		t.Fatalf("no rollout yet: %+v %v", got, err)
	}
	// Every worker that loads version 2 starts its rollout: once.
	for i, want := range []bool{true, false} {
		if started, err := s.Start(ctx, st); err != nil || started != want {
			t.Fatalf("start %d: %v %v", i, started, err)
		}
	}
	if err := s.Count(ctx, "digits", "2", Counters{Jobs: 3, Failed: 1, Met: 2, RunMicros: 300, Shadow: 1, Agree: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Count(ctx, "digits", "2", Counters{Jobs: 1, Met: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "digits")
	if err != nil {
		t.Fatal(err)
	}
	if got.From != "1" || got.To != "2" || got.Canary != 0.1 || got.Shadow != 0.05 || got.Window != time.Minute ||
		!got.Started.Equal(now) || got.Status != Running || got.Counts["2"] != (Counters{Jobs: 4, Failed: 1, Met: 3, RunMicros: 300, Shadow: 1, Agree: 1}) {
		t.Fatalf("read back %+v", got)
	}
	// Another version's rollout waits for this one to end.
	other := st
	other.To = "3"
	if _, err := s.Start(ctx, other); !errors.Is(err, ErrBusy) {
		t.Fatalf("second rollout: %v, want ErrBusy", err)
	}
	// The judge and the operator race: one decision wins.
	if err := s.Decide(ctx, "digits", "2", RolledBack, "failure rate", now); err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctx, "digits", "", Promoted, "by hand", now); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second decision: %v, want ErrNotRunning", err)
	}
	// A rolled-back version stays rolled back when workers see its
	// manifest again; the operator may start it over.
	if started, err := s.Start(ctx, st); err != nil || started {
		t.Fatalf("restart by a worker: %v %v", started, err)
	}
	if got, _ := s.Get(ctx, "digits"); got.Status != RolledBack || got.Reason != "failure rate" {
		t.Fatalf("after rollback %+v", got)
	}
	if err := s.Restart(ctx, st); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Status != Running || len(list[0].Counts) != 0 {
		t.Fatalf("list after restart: %+v %v", list, err)
	}
}

// The judge decides what is stored, so a restarted (or new) leader resumes
// a rollout where it stood.
func TestJudgeOnce(t *testing.T) {
	rdb := fleettest.Redis(t)
	ctx := context.Background()
	s := NewStore(rdb)
	start := time.Now()
	st, _ := Spec{Canary: "50%", For: "10s"}.Parse("digits", "1", "2", start)
	if _, err := s.Start(ctx, st); err != nil {
		t.Fatal(err)
	}
	_ = s.Count(ctx, "digits", "1", Counters{Jobs: 30, Met: 30, RunMicros: 3000})
	_ = s.Count(ctx, "digits", "2", Counters{Jobs: 30, Met: 30, RunMicros: 3000})
	j := NewJudge(s, Thresholds{}, time.Second, slogDiscard(), nil)
	if err := j.Once(ctx, start.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "digits"); got.Status != Running {
		t.Fatalf("mid-window: %s", got.Status)
	}
	j = NewJudge(s, Thresholds{}, time.Second, slogDiscard(), nil) // another leader
	if err := j.Once(ctx, start.Add(11*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "digits"); got.Status != Promoted || got.Ended.IsZero() {
		t.Fatalf("after the window: %+v", got)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
