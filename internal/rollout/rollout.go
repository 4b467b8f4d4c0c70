// Package rollout guards a model's new version: a canary share of the
// model's jobs runs on it while the rest stay on the current one, a sample
// may also run on the other version to compare outputs (shadow), and at
// the end of a window a pure policy promotes it or, as soon as the
// evidence is past its thresholds, rolls it back. The state of a rollout
// lives in one Redis hash per model (rollout:<model>), written with
// single-key commands only, so that it works on a Redis Cluster as is and
// survives any process: workers route and count by it, the scheduler's
// leader judges it, the API shows it.
package rollout

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/inferq/inferq/internal/models/catalog"
)

// Status is where a rollout stands.
type Status string

// The statuses of a rollout; only Running routes a share to the new
// version.
const (
	Running    Status = "running"
	Promoted   Status = "promoted"
	RolledBack Status = "rolled_back"
	Aborted    Status = "aborted"
)

// State is one model's rollout.
type State struct {
	Model string `json:"model"`
	// From is the version served before; To the version on trial.
	From string `json:"from"`
	To   string `json:"to"`
	// Canary and Shadow are shares of the model's jobs in [0, 1].
	Canary float64 `json:"canary"`
	Shadow float64 `json:"shadow"`
	// Window is how long a clean rollout runs before it is promoted.
	Window    time.Duration `json:"-"`
	WindowStr string        `json:"window"`
	Started   time.Time     `json:"started_at"`
	Status    Status        `json:"status"`
	Reason    string        `json:"reason,omitempty"`
	Ended     time.Time     `json:"ended_at,omitzero"`
	// Counts are what workers counted per version while it ran.
	Counts map[string]Counters `json:"counts,omitempty"`
}

// Spec is a rollout as a manifest or the CLI declares it, before it is
// checked: `rollout: {canary: 10%, for: 30m, shadow: 5%}`.
type Spec struct {
	Canary string `yaml:"canary" json:"canary"`
	For    string `yaml:"for" json:"for"`
	Shadow string `yaml:"shadow,omitempty" json:"shadow,omitempty"`
}

// Bounds on a declared rollout: a window under a second cannot gather a
// sample, and one over 30 days is a mistake rather than a plan.
const (
	minWindow = time.Second
	maxWindow = 30 * 24 * time.Hour
)

// ErrBadSpec marks a rollout declaration that cannot be used.
var ErrBadSpec = errors.New("bad rollout")

// Parse checks a spec (it comes from a manifest or an HTTP request) and
// turns it into the state of a rollout from one version to another.
func (s Spec) Parse(model, from, to string, now time.Time) (State, error) {
	canary, err := ParseShare(s.Canary)
	if err != nil || canary <= 0 || canary >= 1 {
		return State{}, fmt.Errorf("%w: canary %q: want a share above 0%% and below 100%%", ErrBadSpec, s.Canary)
	}
	shadow := 0.0
	if s.Shadow != "" {
		if shadow, err = ParseShare(s.Shadow); err != nil {
			return State{}, fmt.Errorf("%w: shadow %q: %v", ErrBadSpec, s.Shadow, err)
		}
	}
	win, err := time.ParseDuration(s.For)
	if err != nil || win < minWindow || win > maxWindow {
		return State{}, fmt.Errorf("%w: for %q: want a duration from %v to %v", ErrBadSpec, s.For, minWindow, maxWindow)
	}
	if !catalog.ValidName(model) || !catalog.ValidName(from) || !catalog.ValidName(to) || from == to {
		return State{}, fmt.Errorf("%w: from %q to %q: want a valid model and two different versions", ErrBadSpec, from, to)
	}
	return State{Model: model, From: from, To: to, Canary: canary, Shadow: shadow, Window: win, WindowStr: win.String(),
		Started: now, Status: Running}, nil
}

// ParseShare reads "10%" or "0.1" as 0.1; it accepts [0, 1] only.
func ParseShare(s string) (float64, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("share %q: %w", s, err)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 || v != v {
		return 0, fmt.Errorf("share %q: want 0%% to 100%%", s)
	}
	return v, nil
}

// pick is a deterministic choice of a share of job ids: the same job
// (redelivered, or on another worker) always falls on the same side, and
// salt keeps the canary and the shadow samples independent.
func pick(salt, id string, share float64) bool {
	h := fnv.New64a()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return float64(h.Sum64()%1_000_000) < share*1_000_000
}

// Version is the version a job runs on: during a rollout the canary share
// on To and the rest on From; after a rollback or an abort From, for as
// long as To is the newest version (current); after a promotion, or with
// no rollout, current, so a new version without a rollout is served to
// everyone at once, as before.
func (s *State) Version(jobID, current string) string {
	if s == nil {
		return current
	}
	switch s.Status {
	case Running:
		if pick("canary", jobID, s.Canary) {
			return s.To
		}
		return s.From
	case RolledBack, Aborted:
		if current == s.To {
			return s.From
		}
	}
	return current
}

// Shadowed says whether a job also runs on the other version for
// comparison.
func (s *State) Shadowed(jobID string) bool {
	return s != nil && s.Status == Running && s.Shadow > 0 && pick("shadow", jobID, s.Shadow)
}

// Other is the version a shadowed job's output is compared with.
func (s *State) Other(version string) string {
	if version == s.To {
		return s.From
	}
	return s.To
}

// SpecFrom reads a manifest's rollout block.
func SpecFrom(m map[string]string) Spec {
	return Spec{Canary: m["canary"], For: m["for"], Shadow: m["shadow"]}
}
