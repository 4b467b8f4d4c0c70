package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/inferq/inferq/internal/models/catalog"
	"github.com/inferq/inferq/internal/rollout"
)

const rolloutUsage = `usage: inferq models rollout MODEL VERSION --canary 10% --for 30m [--shadow 5%] [--from V]
       inferq models promote MODEL | inferq models abort MODEL`

// rollout starts, promotes or aborts a model's rollout. Like the webhooks
// commands it is the operator's, and talks to the fleet's Redis, where
// rollouts live: the API's keys are tenants', and open no fleet-wide
// switch.
func (c *cli) rollout(ctx context.Context, fs *flag.FlagSet, args []string) error {
	redisURL := fs.String("redis-url", os.Getenv("INFERQ_REDIS_URL"), "the fleet's Redis (INFERQ_REDIS_URL)")
	var spec rollout.Spec
	fs.StringVar(&spec.Canary, "canary", "10%", "share of the model's jobs on the new version")
	fs.StringVar(&spec.For, "for", "30m", "window after which a clean rollout is promoted")
	fs.StringVar(&spec.Shadow, "shadow", "", "share of jobs also run on the other version to compare outputs")
	from := fs.String("from", "", "the version served now (default: VERSION-1 for a numbered version)")
	sub := args[0]
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	rdb, err := fleetRedis(*redisURL, "rollout")
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := rollout.NewStore(rdb)
	switch {
	case sub == "rollout" && len(pos) == 2:
		model, to := pos[0], pos[1]
		if *from == "" {
			n, err := strconv.Atoi(to)
			if err != nil || n < 2 {
				return errors.New("--from is needed for a version that is not a number above 1")
			}
			*from = strconv.Itoa(n - 1)
		}
		st, err := spec.Parse(model, *from, to, time.Now())
		if err != nil {
			return err
		}
		if err := store.Restart(ctx, st); err != nil {
			return err
		}
		return c.printRollout(ctx, store, model)
	case (sub == "promote" || sub == "abort") && len(pos) == 1 && catalog.ValidName(pos[0]):
		status, reason := rollout.Promoted, "promoted by the operator"
		if sub == "abort" {
			status, reason = rollout.Aborted, "aborted by the operator"
		}
		if err := store.Decide(ctx, pos[0], "", status, reason, time.Now()); err != nil {
			return fmt.Errorf("%s %s: %w", sub, pos[0], err)
		}
		return c.printRollout(ctx, store, pos[0])
	}
	return errors.New(rolloutUsage)
}

func (c *cli) printRollout(ctx context.Context, store *rollout.Store, model string) error {
	st, err := store.Get(ctx, model)
	if err != nil || st == nil {
		return err
	}
	if c.asJSON {
		return json.NewEncoder(c.out).Encode(st)
	}
	fmt.Fprintf(c.out, "%s: %s -> %s %s (canary %.0f%%, shadow %.0f%%, window %v) %s\n",
		st.Model, st.From, st.To, st.Status, 100*st.Canary, 100*st.Shadow, st.Window, st.Reason)
	return nil
}
