package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// pruneBatch bounds one delete, so housekeeping never holds the write lock
// for long (SQLite has one) however much has piled up.
const pruneBatch = 1000

// Prune deletes what nobody can use or needs any more (see
// store.PruneCutoffs), in batches, and says how much went.
func (s *Store) Prune(ctx context.Context, c store.PruneCutoffs) (store.Pruned, error) {
	var p store.Pruned
	// A session is dead once it ended or can no longer be refreshed; it is
	// kept while any access token of it may still be live, since verifiers
	// learn of its end from the revocation feed.
	dead := `(revoked_at IS NOT NULL OR expires_at <= ? OR last_used_at < ?) AND access_expires_at < ? AND last_used_at < ?`
	deadArgs := []any{micros(c.Now), micros(c.IdleBefore), micros(c.TokensExpiredBefore), micros(c.UsedBefore)}
	for {
		n := 0
		err := s.inTx(ctx, false, func(tx *sql.Tx) error {
			ids, err := s.deadSessions(ctx, tx, dead, deadArgs)
			if err != nil || len(ids) == 0 {
				return err
			}
			n = len(ids)
			in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM refresh_tokens WHERE session_id IN `+in), ids...); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE id IN `+in), ids...)
			if err != nil {
				return err
			}
			// Another replica's housekeeping may have got there first.
			if deleted, err := res.RowsAffected(); err == nil {
				p.Sessions += int(deleted)
			}
			return nil
		})
		if err != nil {
			return p, err
		}
		if n < pruneBatch {
			break
		}
	}
	var err error
	if !c.CountersBefore.IsZero() {
		if p.Counters, err = s.deleteBatched(ctx, `throttle_counters`, `key`, `window_start < ?`, micros(c.CountersBefore)); err != nil {
			return p, err
		}
	}
	if !c.AuditBefore.IsZero() {
		if p.AuditEvents, err = s.deleteBatched(ctx, `audit_events`, `id`, `at < ?`, micros(c.AuditBefore)); err != nil {
			return p, err
		}
	}
	return p, nil
}

// deadSessions returns the ids of up to pruneBatch sessions matching dead.
func (s *Store) deadSessions(ctx context.Context, tx *sql.Tx, dead string, args []any) ([]any, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM sessions WHERE `+dead+` LIMIT ?`), append(args, pruneBatch)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// deleteBatched deletes the rows of table matching where, pruneBatch at a
// time, and returns how many it deleted.
func (s *Store) deleteBatched(ctx context.Context, table, key, where string, args ...any) (int, error) {
	total := 0
	for {
		res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE `+key+` IN (SELECT `+key+` FROM `+table+` WHERE `+where+` LIMIT ?)`), append(args, pruneBatch)...)
		if err != nil {
			return total, s.classify(ctx, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.classify(ctx, err)
		}
		total += int(n)
		if n < pruneBatch {
			return total, nil
		}
	}
}
