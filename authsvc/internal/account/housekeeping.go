package account

import (
	"context"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// Housekeep deletes what has outlived its use: sessions that can no longer
// be refreshed and whose access tokens have all expired (verifiers no longer
// need their revocations), throttling counters whose window has passed, and
// audit events older than the retention. Replicas may run it at once.
func (s *Service) Housekeep(ctx context.Context) (store.Pruned, error) {
	now := s.now().UTC()
	c := store.PruneCutoffs{Now: now, IdleBefore: now.Add(-s.cfg.Sessions.Idle)}
	c.TokensExpiredBefore, c.UsedBefore = s.tokensMayLive(now)
	if s.cfg.CounterRetention > 0 {
		c.CountersBefore = now.Add(-s.cfg.CounterRetention)
	}
	if s.cfg.AuditRetention > 0 {
		c.AuditBefore = now.Add(-s.cfg.AuditRetention)
	}
	return s.store.Prune(ctx, c)
}

// RunHousekeeping runs Housekeep every interval until ctx ends.
func (s *Service) RunHousekeeping(ctx context.Context, interval time.Duration) {
	for {
		switch pruned, err := s.Housekeep(ctx); {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.WarnContext(ctx, "housekeeping failed; retrying later", "err", err)
		case pruned != store.Pruned{}:
			s.log.InfoContext(ctx, "housekeeping", "sessions_deleted", pruned.Sessions, "counters_deleted", pruned.Counters, "audit_events_deleted", pruned.AuditEvents)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
