package account

import (
	"context"

	"github.com/mlgate/mlgate/authsvc/internal/store"
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
	if s.cfg.Events != nil {
		s.cfg.Events(kind, outcome)
	}
	e := store.AuditEvent{At: s.now().UTC(), Kind: kind, UserID: userID, Email: emailAddr, ClientAddr: clientAddr(ctx), Outcome: outcome, Detail: detail}
	// Recorded even when the caller gave up on the request.
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.WarnContext(ctx, "recording an audit event failed", "kind", kind, "err", err)
	}
}

// RecordKeyRotation audits a rotation done by the operator command.
func (s *Service) RecordKeyRotation(ctx context.Context, kid string) {
	s.audit(ctx, "key_rotated", "", "", "success", "new key "+kid)
}
