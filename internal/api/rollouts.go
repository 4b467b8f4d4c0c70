package api

import (
	"context"
	"time"
)

// addRollouts fills in each model's rollout. The list of models is served
// even when Redis is not: a rollout it cannot read is left out.
func (s *Server) addRollouts(ctx context.Context, ms []modelInfo) {
	if s.cfg.Rollouts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for i := range ms {
		st, err := s.cfg.Rollouts.Get(ctx, ms[i].Name)
		if err != nil {
			s.log.Warn("read rollout", "model", ms[i].Name, "err", err)
			return
		}
		ms[i].Rollout = st
	}
}
