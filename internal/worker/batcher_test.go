package worker

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func busyBatcher() *Batcher {
	st := &ServiceTimes{}
	st.Observe(1, 10*time.Millisecond)
	st.Observe(8, 40*time.Millisecond)
	r := &RateMeter{}
	r.Add(t0.Add(-time.Second), 2000) // a deep, fast stream of arrivals
	return &Batcher{MaxBatch: 8, MaxWait: 20 * time.Millisecond, Service: st, Arrivals: r}
}

func TestBatcherSizeCap(t *testing.T) {
	b := busyBatcher()
	if w := b.Wait(t0, t0, 8, time.Time{}, true); w > 0 {
		t.Fatalf("a full batch waits %s, want 0", w)
	}
	if w := b.Wait(t0, t0, 7, time.Time{}, true); w != 20*time.Millisecond {
		t.Fatalf("a batch of 7 waits %s, want the 20ms cap", w)
	}
}

func TestBatcherWaitCap(t *testing.T) {
	b := busyBatcher()
	if w := b.Wait(t0.Add(15*time.Millisecond), t0, 3, time.Time{}, false); w != 5*time.Millisecond {
		t.Fatalf("15ms into a 20ms cap: wait %s, want 5ms", w)
	}
	if w := b.Wait(t0.Add(25*time.Millisecond), t0, 3, time.Time{}, false); w > 0 {
		t.Fatalf("past the cap: wait %s, want 0", w)
	}
}

func TestBatcherDeadlineCutoff(t *testing.T) {
	b := busyBatcher()
	// A batch of 5 waiting for a 6th: est(6) interpolates 10..40ms over
	// 1..8 to about 31.4ms. The earliest deadline is 40ms away, so it may
	// wait only about 8.6ms, not the 20ms cap.
	w := b.Wait(t0, t0, 5, t0.Add(40*time.Millisecond), false)
	want := 40*time.Millisecond - b.Service.Estimate(6)
	if w != want || w >= 20*time.Millisecond || w <= 0 {
		t.Fatalf("wait %s, want %s (the deadline's cutoff)", w, want)
	}
	// A deadline already too close: run now.
	if w := b.Wait(t0, t0, 5, t0.Add(30*time.Millisecond), false); w > 0 {
		t.Fatalf("wait %s with a deadline inside the service time, want 0", w)
	}
}

func TestBatcherLoneJobGoesAtOnce(t *testing.T) {
	st := &ServiceTimes{}
	st.Observe(1, 10*time.Millisecond)
	quiet := &RateMeter{}
	quiet.Add(t0.Add(-time.Minute), 1) // one job a minute ago
	b := &Batcher{MaxBatch: 8, MaxWait: 20 * time.Millisecond, Service: st, Arrivals: quiet}
	if w := b.Wait(t0, t0, 1, t0.Add(5*time.Second), true); w > 0 {
		t.Fatalf("a lone job on an idle device waits %s, want 0", w)
	}
	// The same job while the device is busy may wait for company: waiting
	// costs nothing then.
	if w := b.Wait(t0, t0, 1, t0.Add(5*time.Second), false); w != 20*time.Millisecond {
		t.Fatalf("busy device: wait %s, want the cap", w)
	}
}

func TestServiceTimes(t *testing.T) {
	var st ServiceTimes
	if st.Estimate(4) != 0 {
		t.Fatal("nothing measured: estimate 0")
	}
	st.Observe(2, 20*time.Millisecond)
	if got := st.Estimate(4); got != 40*time.Millisecond {
		t.Fatalf("one point scales: %s", got)
	}
	st.Observe(10, 60*time.Millisecond)
	if got := st.Estimate(6); got != 40*time.Millisecond {
		t.Fatalf("interpolated: %s", got)
	}
	if got := st.Estimate(14); got != 80*time.Millisecond {
		t.Fatalf("extrapolated: %s", got)
	}
	st.Observe(10, 160*time.Millisecond) // moving estimate: 0.8*60 + 0.2*160
	if got := st.Estimate(10); got != 80*time.Millisecond {
		t.Fatalf("moving estimate: %s", got)
	}
	if rate, d := st.Throughput(10); d != 80*time.Millisecond || rate != 125 {
		t.Fatalf("throughput %v jobs/s, %s", rate, d)
	}
}

func TestRateMeter(t *testing.T) {
	var r RateMeter
	for i := 0; i < 100; i++ {
		r.Add(t0.Add(time.Duration(i)*10*time.Millisecond), 1) // 100/s for 1s
	}
	got := r.Rate(t0.Add(time.Second))
	if got < 30 || got > 100 {
		t.Fatalf("rate after 1s of 100/s: %v", got)
	}
	if later := r.Rate(t0.Add(30 * time.Second)); later > 0.01 {
		t.Fatalf("rate long after: %v", later)
	}
}
