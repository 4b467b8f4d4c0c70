package rollout

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// simulate runs a rollout through time as the judge sees it: every tick
// the workers count a second's jobs (rate of them, the canary share on the
// new version), shadow a share of them, and the policy is asked. It
// returns the verdict that ended the rollout and when.
func simulate(s State, rate int, old, neu version, t Thresholds, until time.Duration) (Verdict, time.Duration) {
	s.Counts = map[string]Counters{}
	var debt [2]float64
	for el := time.Duration(0); el <= until; el += time.Second {
		for i, v := range []version{old, neu} {
			share := 1 - s.Canary
			ver := s.From
			if i == 1 {
				share, ver = s.Canary, s.To
			}
			debt[i] += float64(rate) * share
			n := int64(debt[i])
			debt[i] -= float64(n)
			c := s.Counts[ver]
			c.Jobs += n
			c.Failed += int64(math.Round(float64(n) * v.fail))
			c.Met += int64(math.Round(float64(n) * v.met))
			c.RunMicros += (n - int64(math.Round(float64(n)*v.fail))) * v.us
			sh := int64(math.Round(float64(n) * s.Shadow))
			c.Shadow += sh
			// Agreement is the pair's: a shadowed job on either side
			// compares the same two versions.
			c.Agree += int64(math.Round(float64(sh) * neu.agree))
			s.Counts[ver] = c
		}
		if v := Decide(s, s.Started.Add(el), t); v.Action != Hold {
			return v, el
		}
	}
	return Verdict{Action: Hold}, until
}

type version struct {
	fail, met, agree float64
	us               int64
}

func TestDecide(t *testing.T) {
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s := State{Model: "digits", From: "1", To: "2", Canary: 0.1, Shadow: 0.2, Window: time.Minute, Started: start, Status: Running}
	good := version{fail: 0.01, met: 0.99, agree: 1, us: 2000}
	cases := []struct {
		name   string
		neu    version
		rate   int
		want   Action
		before time.Duration // the verdict comes before this
		after  time.Duration // and not before this
		reason string
	}{
		{"a good version is promoted at the end of its window", good, 50, Promote, 61 * time.Second, time.Minute, "clean window"},
		{"a failing version is rolled back within the sample's time", version{fail: 1, met: 1, agree: 1, us: 2000}, 50, RollBack, 10 * time.Second, 0, "failure rate"},
		{"a slow version is rolled back", version{fail: 0.01, met: 0.99, agree: 1, us: 5000}, 50, RollBack, 10 * time.Second, 0, "run time per job"},
		{"a version missing deadlines is rolled back", version{fail: 0.01, met: 0.5, agree: 1, us: 2000}, 50, RollBack, 10 * time.Second, 0, "deadlines met"},
		{"a version answering differently is rolled back by the shadow", version{fail: 0.01, met: 0.99, agree: 0.5, us: 2000}, 50, RollBack, 10 * time.Second, 0, "agree on"},
		{"a window too quiet for a sample holds", good, 1, Hold, time.Hour, time.Hour, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, at := simulate(s, c.rate, good, c.neu, Thresholds{}, 5*time.Minute)
			if c.want == Hold {
				v, at = simulate(s, c.rate, good, c.neu, Thresholds{}, time.Minute+time.Second)
				if v.Action != Hold {
					t.Fatalf("verdict %+v at %v, want hold", v, at)
				}
				return
			}
			if v.Action != c.want || at >= c.before || at < c.after {
				t.Fatalf("verdict %+v at %v, want %v in [%v, %v)", v, at, c.want, c.after, c.before)
			}
			if !contains(v.Reason, c.reason) {
				t.Fatalf("reason %q, want it to say %q", v.Reason, c.reason)
			}
		})
	}
}

// A rollout that has ended is never judged again: a promoted version is not
// rolled back by counts that come in late.
func TestDecideEnded(t *testing.T) {
	s := State{From: "1", To: "2", Status: Promoted, Counts: map[string]Counters{"2": {Jobs: 100, Failed: 100}}}
	if v := Decide(s, time.Now(), Thresholds{}); v.Action != Hold {
		t.Fatalf("ended rollout judged: %+v", v)
	}
}

// A model that runs in microseconds is not rolled back for a ratio a busy
// machine makes (TestRollouts saw 107µs against 22µs on a good version),
// but a model slower by a millisecond and the ratio is.
func TestSlowdownFloor(t *testing.T) {
	start := time.Now()
	s := State{From: "1", To: "2", Status: Running, Window: time.Minute, Started: start, Counts: map[string]Counters{
		"1": {Jobs: 100, Met: 100, RunMicros: 100 * 22}, "2": {Jobs: 100, Met: 100, RunMicros: 100 * 107}}}
	if v := Decide(s, start.Add(time.Minute), Thresholds{}); v.Action != Promote {
		t.Fatalf("microseconds: %+v", v)
	}
	s.Counts["2"] = Counters{Jobs: 100, Met: 100, RunMicros: 100 * 1500}
	if v := Decide(s, start.Add(time.Second), Thresholds{}); v.Action != RollBack {
		t.Fatalf("a millisecond and more: %+v", v)
	}
}

func TestPickShare(t *testing.T) {
	for _, share := range []float64{0, 0.05, 0.1, 0.5, 1} {
		n, hits := 20000, 0
		for i := 0; i < n; i++ {
			if pick("canary", fmt.Sprintf("j_%08d", i), share) {
				hits++
			}
		}
		if got := float64(hits) / float64(n); math.Abs(got-share) > 0.01 {
			t.Errorf("share %v: picked %v", share, got)
		}
	}
	// The canary and the shadow samples are independent.
	both := 0
	for i := 0; i < 20000; i++ {
		id := fmt.Sprintf("j_%08d", i)
		if pick("canary", id, 0.5) && pick("shadow", id, 0.5) {
			both++
		}
	}
	if got := float64(both) / 20000; math.Abs(got-0.25) > 0.02 {
		t.Errorf("canary and shadow overlap on %v of jobs, want about 0.25", got)
	}
}

func TestVersion(t *testing.T) {
	s := &State{From: "1", To: "2", Canary: 0.5, Status: Running}
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("j_%d", i)
		v := s.Version(id, "2")
		if v != s.Version(id, "2") {
			t.Fatal("a job's version is not stable")
		}
		seen[v] = true
	}
	if !seen["1"] || !seen["2"] {
		t.Fatalf("versions %v", seen)
	}
	for st, want := range map[Status]string{RolledBack: "1", Aborted: "1", Promoted: "2"} {
		s.Status = st
		if v := s.Version("j_1", "2"); v != want {
			t.Errorf("%s: version %s, want %s", st, v, want)
		}
		// A version 3 installed after the verdict, without a rollout of
		// its own, serves everyone, as any new version does.
		if v := s.Version("j_1", "3"); v != "3" {
			t.Errorf("%s, then version 3: version %s, want 3", st, v)
		}
	}
	if v := (*State)(nil).Version("j_1", "3"); v != "3" {
		t.Errorf("no rollout: version %s, want the newest", v)
	}
}

func TestSpecParse(t *testing.T) {
	now := time.Now()
	st, err := Spec{Canary: "10%", For: "30m", Shadow: "0.05"}.Parse("digits", "1", "2", now)
	if err != nil || st.Canary != 0.1 || st.Shadow != 0.05 || st.Window != 30*time.Minute || st.Status != Running {
		t.Fatalf("%+v %v", st, err)
	}
	for _, bad := range []Spec{
		{Canary: "0%", For: "1m"}, {Canary: "100%", For: "1m"}, {Canary: "150%", For: "1m"}, {Canary: "x", For: "1m"},
		{Canary: "NaN", For: "1m"}, {Canary: "10%", For: "1ms"}, {Canary: "10%", For: "9999h"}, {Canary: "10%", For: "1m", Shadow: "-1"},
	} {
		if _, err := bad.Parse("digits", "1", "2", now); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	for _, names := range [][3]string{{"digits", "1", "1"}, {"Digits", "1", "2"}, {"digits", "../1", "2"}, {"digits", "", "2"}} {
		if _, err := (Spec{Canary: "10%", For: "1m"}).Parse(names[0], names[1], names[2], now); err == nil {
			t.Errorf("%v accepted", names)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
