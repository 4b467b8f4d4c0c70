package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Report is one run of the harness. Its JSON form is the shape outside
// checks read: {"date", "cores", "scenarios": {"<name>": {"ratios",
// "figures", "targets"}}}; everything else is for the Markdown page only.
type Report struct {
	Date      string             `json:"date"`
	Cores     int                `json:"cores"`
	Scenarios map[string]*Result `json:"scenarios"`

	started  time.Time
	finished time.Time
	order    []string
	machine  []string // lines about the machine and the run
}

// Result is what one scenario measured: ratios (the figures that mean
// something on a shared machine), absolute figures, and targets on
// ratios or figures of the same name.
type Result struct {
	Ratios  map[string]float64 `json:"ratios"`
	Figures map[string]float64 `json:"figures"`
	Targets map[string]Target  `json:"targets"`

	name     string
	title    string
	about    string
	elapsed  time.Duration
	ratioOrd []string
	figOrd   []string
	tgtOrd   []string
	units    map[string]string
	notes    []string
	sections []section
	err      error
}

// Target is a goal on the ratio or figure of the same name.
type Target struct {
	Want float64 `json:"want"`
	Met  bool    `json:"met"`

	atMost bool    // want is an upper bound
	got    float64 // the value compared
	why    string  // what the target says, for the page
}

type section struct{ title, body string }

func newResult(name, title, about string) *Result {
	return &Result{
		Ratios: map[string]float64{}, Figures: map[string]float64{}, Targets: map[string]Target{},
		name: name, title: title, about: about, units: map[string]string{},
	}
}

// finite keeps NaN and infinities out of the JSON (encoding/json refuses
// them); a value that could not be measured is left out and noted.
func (r *Result) finite(kind, name string, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		r.note(fmt.Sprintf("%s %s could not be measured (%v) and is left out", kind, name, v))
		return false
	}
	return true
}

// ratio records a ratio; unit says what it divides.
func (r *Result) ratio(name string, v float64, unit string) {
	if !r.finite("ratio", name, v) {
		return
	}
	if _, ok := r.Ratios[name]; !ok {
		r.ratioOrd = append(r.ratioOrd, name)
	}
	r.Ratios[name] = round(v, 4)
	r.units[name] = unit
}

// figure records an absolute figure with its unit.
func (r *Result) figure(name string, v float64, unit string) {
	if !r.finite("figure", name, v) {
		return
	}
	if _, ok := r.Figures[name]; !ok {
		r.figOrd = append(r.figOrd, name)
	}
	r.Figures[name] = round(v, 4)
	r.units[name] = unit
}

// atLeast sets a target want <= the ratio or figure called name.
func (r *Result) atLeast(name string, want float64, why string) {
	r.target(name, want, false, why)
}

// atMostTarget sets a target value <= want.
func (r *Result) atMostTarget(name string, want float64, why string) {
	r.target(name, want, true, why)
}

func (r *Result) target(name string, want float64, atMost bool, why string) {
	// Values are recorded to 4 significant digits (round): a want taken
	// from another measurement is rounded alike, so that a tie (the same
	// CER as tesseract's, say) reads as the tie it is.
	want = round(want, 4)
	got, ok := r.Ratios[name]
	if !ok {
		got, ok = r.Figures[name]
	}
	met := ok && (got >= want && !atMost || got <= want && atMost)
	if _, seen := r.Targets[name]; !seen {
		r.tgtOrd = append(r.tgtOrd, name)
	}
	if !ok {
		got = math.NaN()
	}
	r.Targets[name] = Target{Want: want, Met: met, atMost: atMost, got: got, why: why}
}

func (r *Result) note(s string) { r.notes = append(r.notes, s) }

func (r *Result) addSection(title, body string) {
	r.sections = append(r.sections, section{title, body})
}

func round(v float64, digits int) float64 {
	if v == 0 {
		return 0
	}
	// Keep 'digits' significant digits: enough for ratios and rates, and
	// a stable, readable JSON.
	mag := math.Pow(10, float64(digits)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*mag) / mag
}

func (rep *Report) add(r *Result) {
	if rep.Scenarios == nil {
		rep.Scenarios = map[string]*Result{}
	}
	rep.Scenarios[r.name] = r
	rep.order = append(rep.order, r.name)
}

// Write writes benchmarks.json and benchmarks.md into dir.
func (rep *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "benchmarks.md"), []byte(rep.Markdown()), 0o644)
}

// Failed lists the scenarios that ended with an error.
func (rep *Report) Failed() []string {
	var out []string
	for _, n := range rep.order {
		if rep.Scenarios[n].err != nil {
			out = append(out, n)
		}
	}
	return out
}

func fmtVal(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func (t Target) rule() string {
	if t.atMost {
		return "≤ " + fmtVal(t.Want)
	}
	return "≥ " + fmtVal(t.Want)
}

func metWord(t Target) string {
	if t.Met {
		return "**met**"
	}
	return "**not met**"
}

// Markdown renders the report: the ratio lines of every scenario first,
// then each scenario's ratios, targets, figures, tables and notes.
func (rep *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by the benchmark harness (`make bench`, or `go run ./cmd/bench --scenario NAME`); do not edit by hand.\n")
	b.WriteString("Every comparison is measured side by side in one run on one machine, alternating what it compares (A B A B) so that the machine's drift hits both sides; only the ratios travel to other machines.\n\n")
	fmt.Fprintf(&b, "- date: %s (%s to %s UTC)\n", rep.Date, rep.started.UTC().Format("15:04:05"), rep.finished.UTC().Format("15:04:05"))
	fmt.Fprintf(&b, "- cores: %d\n", rep.Cores)
	for _, l := range rep.machine {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n## Ratios\n\n")
	b.WriteString("| scenario | ratio | value | target | |\n|---|---|---:|---|---|\n")
	for _, n := range rep.order {
		r := rep.Scenarios[n]
		for _, k := range r.ratioOrd {
			tgt, verdict := "", ""
			if t, ok := r.Targets[k]; ok {
				tgt, verdict = t.rule(), metWord(t)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", n, k, fmtVal(r.Ratios[k]), tgt, verdict)
		}
	}
	b.WriteString("\n## Targets\n\n| scenario | target | want | got | |\n|---|---|---|---:|---|\n")
	for _, n := range rep.order {
		r := rep.Scenarios[n]
		for _, k := range r.tgtOrd {
			t := r.Targets[k]
			fmt.Fprintf(&b, "| %s | %s: %s | %s | %s | %s |\n", n, k, t.why, t.rule(), fmtVal(t.got), metWord(t))
		}
	}
	b.WriteString("\n")
	for _, n := range rep.order {
		r := rep.Scenarios[n]
		fmt.Fprintf(&b, "## %s: %s\n\n%s\n\n", n, r.title, r.about)
		if r.err != nil {
			fmt.Fprintf(&b, "**The scenario failed:** %v\n\n", r.err)
		}
		fmt.Fprintf(&b, "Ran %s.\n\n", r.elapsed.Round(time.Second))
		if len(r.ratioOrd) > 0 {
			b.WriteString("| ratio | value | what |\n|---|---:|---|\n")
			for _, k := range r.ratioOrd {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", k, fmtVal(r.Ratios[k]), r.units[k])
			}
			b.WriteString("\n")
		}
		if len(r.figOrd) > 0 {
			b.WriteString("| figure | value | unit |\n|---|---:|---|\n")
			for _, k := range r.figOrd {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", k, fmtVal(r.Figures[k]), r.units[k])
			}
			b.WriteString("\n")
		}
		for _, s := range r.sections {
			fmt.Fprintf(&b, "### %s\n\n%s\n\n", s.title, strings.TrimRight(s.body, "\n"))
		}
		if len(r.notes) > 0 {
			for _, s := range r.notes {
				fmt.Fprintf(&b, "- %s\n", s)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
