package sqlstore

import (
	"context"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// CountHit adds one to the counter key in the window of length window that
// contains now (a window starts at its first hit), and returns the count and
// when the window ends. One statement, so concurrent replicas count exactly.
func (s *Store) CountHit(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	nowUs, expired := micros(now), micros(now.Add(-window))
	var (
		count int
		start int64
	)
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO throttle_counters (key, window_start, count) VALUES (?, ?, 1)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN throttle_counters.window_start <= ? THEN 1 ELSE throttle_counters.count + 1 END,
			window_start = CASE WHEN throttle_counters.window_start <= ? THEN ? ELSE throttle_counters.window_start END
		RETURNING count, window_start`), key, nowUs, expired, expired, nowUs).Scan(&count, &start)
	if err != nil {
		return 0, time.Time{}, s.classify(ctx, err)
	}
	return count, fromMicros(start).Add(window), nil
}

// PeekCount returns the counter key's count in its current window (0 when
// the window has passed) and when the window ends.
func (s *Store) PeekCount(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	var count int
	var start int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT count, window_start FROM throttle_counters WHERE key = ?`), key).Scan(&count, &start)
	if err != nil {
		if err = s.classify(ctx, err); err == store.ErrNotFound {
			return 0, time.Time{}, nil
		}
		return 0, time.Time{}, err
	}
	end := fromMicros(start).Add(window)
	if !now.Before(end) {
		return 0, time.Time{}, nil
	}
	return count, end, nil
}

// ResetCount forgets the counter key.
func (s *Store) ResetCount(ctx context.Context, key string) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM throttle_counters WHERE key = ?`), key)
	return s.classify(ctx, err)
}
