package sla

import (
	"strings"
	"testing"
	"time"
)

func runAll(t *testing.T, s Scenario) map[string]Result {
	t.Helper()
	res, err := Compare([]Scenario{s}, Contenders())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Result{}
	for _, r := range res {
		out[r.Policy] = r
		t.Logf("%-16s goodput %6.2f/s  premium %7.3f%%  standard %7.3f%%  bulk %7.3f%%", r.Policy, r.Goodput(),
			100*r.Tier("premium").Attainment(), 100*r.Tier("standard").Attainment(), 100*r.Tier("bulk").Attainment())
	}
	return out
}

// The targets of the scheduler issue, at 1.5x overload, 20/30/50 by
// arrivals, on a fixed-seed trace: counts, not timings.
func TestSimOverloadTargets(t *testing.T) {
	r := runAll(t, Steady(1.5))
	ours := r["inferq"]
	if total := ours.Total().Finished; total < 200_000 {
		t.Fatalf("only %d jobs simulated", total)
	}
	if a := ours.Tier("premium").Attainment(); a < 0.999 {
		t.Errorf("premium attainment %.4f, want >= 0.999", a)
	}
	if a, b := ours.Tier("standard").Attainment(), r["strict-priority"].Tier("standard").Attainment(); a < b {
		t.Errorf("standard attainment %.4f, below strict priority's %.4f", a, b)
	}
	for _, base := range []string{"fifo", "strict-priority", "edf"} {
		if g, b := ours.Goodput(), r[base].Goodput(); g < b {
			t.Errorf("goodput %.2f/s below %s's %.2f/s", g, base, b)
		}
	}
}

func TestSimUnderloadTargets(t *testing.T) {
	s := Steady(0.8)
	p, err := New(s.Tiers)
	if err != nil {
		t.Fatal(err)
	}
	r := Simulate(s, p)
	for _, tr := range r.Tiers {
		if tr.Finished < 10_000 {
			t.Errorf("%s: only %d jobs", tr.Tier, tr.Finished)
		}
		if a := tr.Attainment(); a < 0.999 {
			t.Errorf("%s attainment %.4f at 0.8 load, want >= 0.999", tr.Tier, a)
		}
	}
}

// small shrinks a scenario to a few minutes so that the table test is quick.
func small(s Scenario) Scenario {
	s.Duration = 3 * time.Minute
	for i := range s.Streams {
		if s.Streams[i].Upload > 0 {
			s.Streams[i].Upload = 2000
		}
		if s.Streams[i].BurstEvery > 0 {
			s.Streams[i].BurstEvery, s.Streams[i].BurstLen = time.Minute, 15*time.Second
		}
	}
	return s
}

func TestSimTableRendersAllPolicies(t *testing.T) {
	var scenarios []Scenario
	for _, s := range StandardScenarios() {
		scenarios = append(scenarios, small(s))
	}
	res, err := Compare(scenarios, Contenders())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(scenarios)*4 {
		t.Fatalf("%d results, want %d", len(res), len(scenarios)*4)
	}
	md := Markdown(scenarios, res)
	for _, s := range scenarios {
		section, _, _ := strings.Cut(md[strings.Index(md, "### "+s.Name+"\n"):][4:], "### ")
		for _, c := range Contenders() {
			for _, st := range s.Streams {
				if !strings.Contains(section, "| "+c.Name+" | "+st.Tier+" | ") {
					t.Errorf("%s: no row for %s / %s", s.Name, c.Name, st.Tier)
				}
			}
			if !strings.Contains(section, "| "+c.Name+" | **all** | ") {
				t.Errorf("%s: no total row for %s", s.Name, c.Name)
			}
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestSimIsDeterministic(t *testing.T) {
	s := small(Bursty())
	a := Simulate(s, NewFIFO())
	b := Simulate(s, NewFIFO())
	if a.Makespan != b.Makespan || a.Total() != b.Total() {
		t.Fatalf("two runs differ: %+v vs %+v", a.Total(), b.Total())
	}
	var arrived int
	for _, tr := range a.Tiers {
		arrived += tr.Finished
	}
	if arrived != len(s.trace()) {
		t.Fatalf("%d finished, %d arrived", arrived, len(s.trace()))
	}
}
