package sqlstore

import (
	"context"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// AppendAudit records an event.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO audit_events (at, kind, user_id, email, client, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		micros(e.At), e.Kind, e.UserID, e.Email, e.ClientAddr, e.Outcome, e.Detail)
	return s.classify(ctx, err)
}

// ListAudit returns up to limit events with ids below beforeID (0: the
// newest), newest first; only userID's when it is set.
func (s *Store) ListAudit(ctx context.Context, beforeID int64, limit int, userID string) ([]store.AuditEvent, error) {
	query := `SELECT id, at, kind, user_id, email, client, outcome, detail FROM audit_events WHERE (? = 0 OR id < ?) AND (? = '' OR user_id = ?) ORDER BY id DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, s.q(query), beforeID, beforeID, userID, userID, limit)
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var (
			e  store.AuditEvent
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.UserID, &e.Email, &e.ClientAddr, &e.Outcome, &e.Detail); err != nil {
			return nil, s.classify(ctx, err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, s.classify(ctx, rows.Err())
}
