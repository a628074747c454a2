package account

import (
	"context"
	"errors"

	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/authsvc/internal/throttle"
)

type clientAddrKey struct{}

// WithClientAddr records the caller's network address for the audit log.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

func clientAddr(ctx context.Context) string {
	addr, _ := ctx.Value(clientAddrKey{}).(string)
	return addr
}

// audit records an event. A failure to record is logged, not returned: the
// operation it describes has already happened.
func (s *Service) audit(ctx context.Context, kind, userID, emailAddr, outcome, detail string) {
	s.count(kind, outcome)
	e := store.AuditEvent{At: s.now().UTC(), Kind: kind, UserID: userID, Email: emailAddr, ClientAddr: clientAddr(ctx), Outcome: outcome, Detail: detail}
	// Recorded even when the caller gave up on the request.
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.WarnContext(ctx, "recording an audit event failed", "kind", kind, "err", err)
	}
}

// auditThrottled records a throttled attempt once per lock: the refusal that
// crossed the limit. The rest of a flood only counts in the metrics, so that
// unauthenticated callers cannot fill the audit log.
func (s *Service) auditThrottled(ctx context.Context, kind, userID, emailAddr string, err error) {
	var throttled *throttle.ThrottledError
	if errors.As(err, &throttled) && !throttled.First {
		s.count(kind, "throttled")
		return
	}
	s.audit(ctx, kind, userID, emailAddr, "throttled", err.Error())
}

// count tells the metrics of an event.
func (s *Service) count(kind, outcome string) {
	if s.cfg.Events != nil {
		s.cfg.Events(kind, outcome)
	}
}

// RecordKeyRotation audits a rotation done by the operator command.
func (s *Service) RecordKeyRotation(ctx context.Context, kid string) {
	s.audit(ctx, "key_rotated", "", "", "success", "new key "+kid)
}
