package sla

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func newDeadline(t *testing.T, tiers []Tier, opts ...Option) *Deadline {
	t.Helper()
	d, err := New(tiers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// job makes a job of tier arriving at sec with the given relative deadline.
func job(id, tier string, sec float64, deadline time.Duration) Job {
	return Job{ID: id, Tier: tier, Arrival: at(sec), Deadline: at(sec).Add(deadline)}
}

func popIDs(t *testing.T, p Policy, now time.Time, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		j, ok := p.Pop(now)
		if !ok {
			break
		}
		ids = append(ids, j.ID)
	}
	return ids
}

func TestDeadlineOrdersByDeadlineWithinTier(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	// A job may ask for a later deadline than its tier's: it then queues
	// behind later arrivals with earlier deadlines.
	d.Push(job("late-deadline", "bulk", 0, 3*time.Hour), at(0))
	d.Push(job("a", "bulk", 1, time.Hour), at(1))
	d.Push(job("b", "bulk", 2, time.Hour), at(2))
	d.Push(Job{ID: "c", Tier: "bulk", Arrival: at(3)}, at(3)) // deadline from the tier
	got := fmt.Sprint(popIDs(t, d, at(4), 10))
	if want := "[a b c late-deadline]"; got != want {
		t.Fatalf("pop order %s, want %s", got, want)
	}
}

func TestDeadlineFillsZeroDeadlineAndArrival(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	d.Push(Job{ID: "x", Tier: "standard"}, at(10))
	j, _ := d.Pop(at(10))
	if !j.Arrival.Equal(at(10)) || !j.Deadline.Equal(at(70)) {
		t.Fatalf("arrival %v deadline %v, want %v and %v", j.Arrival, j.Deadline, at(10), at(70))
	}
}

func TestDeadlineLendsByPriority(t *testing.T) {
	// Capacity is known and plentiful, so no tier is urgent: spare capacity
	// goes to the highest-priority tier with work, whatever arrived first.
	d := newDeadline(t, DefaultTiers())
	d.SetCapacity(100, 100*time.Millisecond)
	d.Push(job("b1", "bulk", 0, time.Hour), at(0))
	d.Push(job("s1", "standard", 0.1, time.Minute), at(0.1))
	d.Push(job("p1", "premium", 0.2, 5*time.Second), at(0.2))
	d.Push(job("b2", "bulk", 0.3, time.Hour), at(0.3))
	got := fmt.Sprint(popIDs(t, d, at(1), 10))
	if want := "[p1 s1 b1 b2]"; got != want {
		t.Fatalf("pop order %s, want %s", got, want)
	}
}

// shares pops n jobs from a policy whose tiers are all kept backlogged and
// returns how many each tier got.
func shares(t *testing.T, d *Deadline, backlogged []string, n int) map[string]int {
	t.Helper()
	for _, tier := range backlogged {
		for i := range n {
			d.Push(job(fmt.Sprintf("%s-%d", tier, i), tier, 0, 10*time.Hour), at(0))
		}
	}
	got := map[string]int{}
	for range n {
		j, ok := d.Pop(at(1))
		if !ok {
			t.Fatal("queue ran dry")
		}
		got[j.Tier]++
	}
	return got
}

func TestDeadlineGuaranteesShares(t *testing.T) {
	// Capacity unknown: every backlogged tier claims its share.
	d := newDeadline(t, DefaultTiers())
	got := shares(t, d, []string{"premium", "standard", "bulk"}, 1000)
	for tier, want := range map[string]int{"premium": 500, "standard": 300, "bulk": 200} {
		if g := got[tier]; g < want-2 || g > want+2 {
			t.Errorf("%s got %d of 1000 dispatches, want %d", tier, g, want)
		}
	}
}

func TestDeadlineLendsUnusedShare(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	// Premium is idle: its half goes to standard, the higher of the two
	// that have work; bulk keeps its guaranteed fifth.
	got := shares(t, d, []string{"standard", "bulk"}, 1000)
	if got["bulk"] < 198 || got["bulk"] > 202 || got["standard"] != 1000-got["bulk"] {
		t.Errorf("standard %d bulk %d of 1000, want 800/200", got["standard"], got["bulk"])
	}
	// Alone, bulk gets everything.
	d = newDeadline(t, DefaultTiers())
	if got := shares(t, d, []string{"bulk"}, 500); got["bulk"] != 500 {
		t.Errorf("bulk alone got %d of 500", got["bulk"])
	}
}

func TestDeadlineTierWithSlackLendsItsShare(t *testing.T) {
	tiers := []Tier{{"standard", time.Minute, 0.5}, {"bulk", time.Hour, 0.5}}
	d := newDeadline(t, tiers)
	d.SetCapacity(10, 0)
	// 100 bulk jobs need 20 s at bulk's guaranteed 5 jobs/s and have an
	// hour: bulk is not urgent and lets standard have everything.
	for i := range 100 {
		d.Push(job(fmt.Sprint("b", i), "bulk", 0, time.Hour), at(0))
		d.Push(job(fmt.Sprint("s", i), "standard", 0, time.Minute), at(0))
	}
	for i := range 100 {
		if j, _ := d.Pop(at(float64(i) / 10)); j.Tier != "standard" {
			t.Fatalf("pop %d: %s job while standard has work and bulk has slack", i, j.Tier)
		}
	}
	// 15 s before its deadline, bulk's 100 jobs (20 s at its share) are
	// urgent: it claims its half.
	for i := range 100 {
		d.Push(job(fmt.Sprint("s2-", i), "standard", 3585, time.Minute), at(3585))
	}
	got := map[string]int{}
	for range 40 {
		j, _ := d.Pop(at(3585))
		got[j.Tier]++
	}
	if got["bulk"] != 20 {
		t.Fatalf("urgent bulk got %d of 40 dispatches, want 20", got["bulk"])
	}
}

func TestDeadlineDemotesHopelessAtPush(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	d.SetCapacity(1, 500*time.Millisecond) // one job a second
	// Ten premium jobs at once: the sixth and later would start 5 s or more
	// from now, past their 5 s deadline, even with the whole fleet.
	for i := range 10 {
		d.Push(job(fmt.Sprint("p", i), "premium", 0, 5*time.Second), at(0))
	}
	d.Push(job("s", "standard", 0, time.Minute), at(0))
	st := d.Stats(at(0))
	if st[0].Tier != "premium" || st[0].Queued != 10 || st[0].Late != 5 {
		t.Fatalf("premium stats %+v, want 10 queued, 5 late", st[0])
	}
	// The five that can make it, then the standard job (which can), and
	// only then the late ones.
	got := fmt.Sprint(popIDs(t, d, at(0), 11))
	if want := "[p0 p1 p2 p3 p4 s p5 p6 p7 p8 p9]"; got != want {
		t.Fatalf("pop order %s, want %s", got, want)
	}
}

func TestDeadlineDemotesHeadThatCanNoLongerMakeIt(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	d.SetCapacity(1000, time.Second)
	d.Push(job("p-old", "premium", 0, 5*time.Second), at(0))
	d.Push(job("s", "standard", 0, time.Minute), at(0))
	d.Push(job("p-new", "premium", 3.5, 5*time.Second), at(3.5))
	// At 4.5 s p-old needs 1 s more than it has: p-new and s go first.
	got := fmt.Sprint(popIDs(t, d, at(4.5), 1))
	if got != "[p-new]" {
		t.Fatalf("first pop %s, want [p-new]", got)
	}
	if st := d.Stats(at(4.5)); st[0].Late != 1 {
		t.Fatalf("premium late %d, want 1", st[0].Late)
	}
	if got := fmt.Sprint(popIDs(t, d, at(4.5), 5)); got != "[s p-old]" {
		t.Fatalf("then %s, want [s p-old]", got)
	}
}

// overload drives d for steps seconds at one dispatch a second while premium
// jobs arrive two a second, with one bulk job queued at the start, and
// returns the second the bulk job was dispatched (-1 if never).
func overload(d *Deadline, steps int) int {
	d.SetCapacity(1, 0)
	d.Push(job("bulk", "bulk", 0, time.Minute), at(0))
	for s := range steps {
		now := at(float64(s))
		for k := range 2 {
			d.Push(Job{ID: fmt.Sprintf("p%d-%d", s, k), Tier: "premium", Arrival: now}, now)
		}
		if j, _ := d.Pop(now); j.ID == "bulk" {
			return s
		}
	}
	return -1
}

func TestDeadlineAgeBoundUnderSustainedPremiumOverload(t *testing.T) {
	// Bulk has no share, so only the age bound can get it out.
	tiers := []Tier{{"premium", 5 * time.Second, 1}, {"bulk", time.Minute, 0}}
	d := newDeadline(t, tiers, WithAgeFactor(2))
	s := overload(d, 20000)
	if s < 0 {
		t.Fatal("bulk job starved under premium overload")
	}
	if s < 120 {
		t.Fatalf("bulk job ran at %d s, before it was aged (120 s)", s)
	}
	t.Logf("bulk job ran after %d s", s)
	// Without the aged share, it would starve: the bound is what saves it.
	d = newDeadline(t, tiers, WithAgedShare(0))
	if s := overload(d, 20000); s >= 0 {
		t.Fatalf("with no aged share the bulk job still ran at %d s", s)
	}
}

func TestDeadlineBulkMakesItUnderPremiumOverloadWithDefaultShares(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	s := overload(d, 200)
	// The bulk job lends its share while it has slack and claims it when
	// its minute runs short: it runs, and in time.
	if s < 0 || s > 60 {
		t.Fatalf("bulk job ran at %d s, want within its 60 s deadline", s)
	}
}

func TestDeadlineRemove(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	d.SetCapacity(1, 0)
	for i := range 8 {
		d.Push(job(fmt.Sprint("p", i), "premium", 0, 5*time.Second), at(0)) // p6, p7 late
	}
	d.Push(job("p0", "premium", 0, 5*time.Second), at(0)) // duplicate: ignored
	if d.Len() != 8 {
		t.Fatalf("Len %d after a duplicate push, want 8", d.Len())
	}
	if !d.Remove("p2") || !d.Remove("p6") || d.Remove("p6") || d.Remove("nope") {
		t.Fatal("Remove answered wrong")
	}
	st := d.Stats(at(0))
	if d.Len() != 6 || st[0].Queued != 6 || st[0].Late != 1 {
		t.Fatalf("Len %d stats %+v, want 6 queued, 1 late", d.Len(), st[0])
	}
	if got := fmt.Sprint(popIDs(t, d, at(0), 10)); got != "[p0 p1 p3 p4 p5 p7]" {
		t.Fatalf("pop order %s", got)
	}
	if _, ok := d.Pop(at(0)); ok || d.Len() != 0 {
		t.Fatal("queue not empty")
	}
}

func TestDeadlineStats(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	d.Push(job("s1", "standard", 0, time.Minute), at(5))
	d.Push(job("s2", "standard", 3, time.Minute), at(5))
	d.Push(job("x", "gold", 4, time.Minute), at(5)) // unknown tier: listed last
	st := d.Stats(at(10))
	want := []TierStats{
		{Tier: "premium"},
		{Tier: "standard", Queued: 2, OldestWait: 10 * time.Second},
		{Tier: "bulk"},
		{Tier: "gold", Queued: 1, OldestWait: 6 * time.Second},
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	d.Remove("s1")
	if st := d.Stats(at(10)); st[1].OldestWait != 7*time.Second {
		t.Fatalf("oldest wait after removing the oldest: %v", st[1].OldestWait)
	}
}

func TestDeadlineExpectedWait(t *testing.T) {
	d := newDeadline(t, DefaultTiers())
	if w := d.ExpectedWait("premium", at(0)); w != 0 {
		t.Fatalf("wait %v before capacity is known, want 0", w)
	}
	d.SetCapacity(10, time.Second)
	empty := d.ExpectedWait("bulk", at(0))
	// 1 job at bulk's guaranteed 2 jobs/s or more, plus 1 s latency.
	if empty < time.Second || empty > 1500*time.Millisecond {
		t.Fatalf("bulk wait on an empty queue %v", empty)
	}
	for i := range 1000 {
		d.Push(job(fmt.Sprint("b", i), "bulk", 0, time.Hour), at(0))
	}
	full := d.ExpectedWait("bulk", at(0))
	// 1000 ahead at 2 to 10 jobs/s.
	if full < 100*time.Second || full > 502*time.Second {
		t.Fatalf("bulk wait behind 1000 jobs %v", full)
	}
	if p := d.ExpectedWait("premium", at(0)); p >= 2*time.Second {
		t.Fatalf("premium wait %v with only bulk queued", p)
	}
}

func TestNewValidates(t *testing.T) {
	bad := [][]Tier{
		{{Name: "", Deadline: time.Second}},
		{{Name: "a", Deadline: time.Second}, {Name: "a", Deadline: time.Second}},
		{{Name: "a", Deadline: 0}},
		{{Name: "a", Deadline: time.Second, Share: -0.1}},
	}
	for _, tiers := range bad {
		if _, err := New(tiers); err == nil {
			t.Errorf("New(%+v) accepted", tiers)
		}
	}
	for _, o := range []Option{WithAgeFactor(0.5), WithAgedShare(1), WithAgedShare(-1), WithMargin(-1)} {
		if _, err := New(DefaultTiers(), o); err == nil {
			t.Error("New accepted a bad option")
		}
	}
	// Shares over 1 are scaled to add up to 1.
	d := newDeadline(t, []Tier{{"a", time.Second, 2}, {"b", time.Second, 2}})
	if d.tiers[0].share != 0.5 || d.tiers[1].share != 0.5 {
		t.Fatalf("shares %v %v, want 0.5 each", d.tiers[0].share, d.tiers[1].share)
	}
}
