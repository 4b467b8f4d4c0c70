package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/inferq/inferq/internal/fleettest"
	"github.com/inferq/inferq/internal/rollout"
)

// TestRolloutCommands: the operator starts a rollout, ends it by hand, and
// cannot end it twice.
func TestRolloutCommands(t *testing.T) {
	rdb := fleettest.Redis(t)
	url := "redis://" + rdb.Options().Addr + "/0"
	ctx := context.Background()
	inferq := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append(args, "--redis-url", url), &out, &errOut)
		return out.String(), err
	}
	out, err := inferq("models", "rollout", "digits", "2", "--canary", "10%", "--for", "30m", "--shadow", "5%")
	if err != nil || !strings.Contains(out, "1 -> 2 running") {
		t.Fatalf("rollout: %q %v", out, err)
	}
	st, err := rollout.NewStore(rdb).Get(ctx, "digits")
	if err != nil || st.Canary != 0.1 || st.Shadow != 0.05 || st.From != "1" || st.To != "2" {
		t.Fatalf("stored %+v %v", st, err)
	}
	if out, err = inferq("models", "abort", "digits"); err != nil || !strings.Contains(out, "aborted by the operator") {
		t.Fatalf("abort: %q %v", out, err)
	}
	if _, err = inferq("models", "promote", "digits"); !errors.Is(err, rollout.ErrNotRunning) {
		t.Fatalf("promote after abort: %v, want ErrNotRunning", err)
	}
	for _, bad := range [][]string{
		{"models", "rollout", "digits", "2", "--canary", "200%"},
		{"models", "rollout", "digits", "v2"}, // no --from, no number
		{"models", "promote", "../x"},
	} {
		if _, err := inferq(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
