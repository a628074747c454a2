package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

const sessionColumns = `s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.access_expires_at, s.revoked_at, s.revoke_reason`

func scanSession(row scanner, extra ...any) (store.Session, error) {
	var (
		ss                                    store.Session
		created, used, expires, accessExpires int64
		revoked                               sql.NullInt64
	)
	dest := append([]any{&ss.ID, &ss.UserID, &created, &used, &expires, &accessExpires, &revoked, &ss.RevokeReason}, extra...)
	if err := row.Scan(dest...); err != nil {
		return store.Session{}, err
	}
	ss.CreatedAt, ss.LastUsedAt, ss.ExpiresAt = fromMicros(created), fromMicros(used), fromMicros(expires)
	ss.AccessExpiresAt, ss.RevokedAt = fromOptionalMicros(accessExpires), fromNullMicros(revoked)
	return ss, nil
}

// CreateSession stores a new session and its first refresh token, provided
// the user is still enabled and its password hash is still checkedHash: a
// login checked against a password that was changed (or an account disabled)
// meanwhile gets ErrSessionEnded instead of a session that the change could
// not end. The user row is locked, so ChangePassword and DisableUser either
// see this session or make it fail.
func (s *Store) CreateSession(ctx context.Context, ss store.Session, first store.RefreshToken, checkedHash []byte) error {
	return s.inTx(ctx, false, func(tx *sql.Tx) error {
		var (
			hash     []byte
			disabled sql.NullInt64
		)
		if err := tx.QueryRowContext(ctx, s.q(`SELECT password_hash, disabled_at FROM users WHERE id = ?`+s.d.ForUpdate), ss.UserID).Scan(&hash, &disabled); err != nil {
			return err
		}
		if disabled.Valid || !bytes.Equal(hash, checkedHash) {
			return store.ErrSessionEnded
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, access_expires_at, revoke_reason) VALUES (?, ?, ?, ?, ?, ?, '')`),
			ss.ID, ss.UserID, micros(ss.CreatedAt), micros(ss.LastUsedAt), micros(ss.ExpiresAt), optionalMicros(ss.AccessExpiresAt)); err != nil {
			return err
		}
		return s.insertRefresh(ctx, tx, first)
	})
}

func (s *Store) insertRefresh(ctx context.Context, tx *sql.Tx, rt store.RefreshToken) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)`),
		rt.Hash, rt.SessionID, micros(rt.CreatedAt))
	return err
}

// Session finds a session by id.
func (s *Store) Session(ctx context.Context, id string) (store.Session, error) {
	ss, err := scanSession(s.db.QueryRowContext(ctx, s.q(`SELECT `+sessionColumns+` FROM sessions s WHERE s.id = ?`), id))
	return ss, s.classify(ctx, err)
}

// RotateRefreshToken exchanges the refresh token hashed oldHash for next, in
// one transaction, and returns the session (also alongside ErrRefreshReused
// and ErrSessionEnded, except for a token it does not know). The old token must be unused and
// its session active, not idle for longer than idle and not past its absolute
// end. A token that was already exchanged is theft or a client bug: its
// session is revoked and ErrRefreshReused returned; concurrent exchanges of
// one token leave exactly one winner. accessExpiresAt is the latest exp the
// access token about to be issued may have.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, now time.Time, idle time.Duration, accessExpiresAt time.Time) (store.Session, error) {
	var ss store.Session
	var outcome error
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		var (
			used sql.NullInt64
			err  error
		)
		// Locked: a logout committing meanwhile is seen (PostgreSQL re-reads
		// the row), so no token is issued for a session that just ended.
		ss, err = scanSession(tx.QueryRowContext(ctx, s.q(`SELECT `+sessionColumns+`, r.used_at
			FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = ?`+s.d.ForUpdate), oldHash), &used)
		if err != nil {
			if err == sql.ErrNoRows {
				return store.ErrSessionEnded
			}
			return err
		}
		end := func(reason string, result error) error {
			if _, err := s.revokeSession(ctx, tx, ss.ID, now, reason); err != nil {
				return err
			}
			outcome = result // committed, then reported
			return nil
		}
		switch {
		case ss.Revoked():
			outcome = store.ErrSessionEnded
			return nil
		case used.Valid:
			return end("refresh_reuse", store.ErrRefreshReused)
		case !now.Before(ss.ExpiresAt):
			return end("expired", store.ErrSessionEnded)
		case now.Sub(ss.LastUsedAt) > idle:
			return end("idle", store.ErrSessionEnded)
		}
		// The guard on used_at makes concurrent exchanges race on one row:
		// PostgreSQL re-checks it after the winner commits, SQLite runs one
		// writer at a time. The losers find it used: reuse.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`), micros(now), oldHash)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return end("refresh_reuse", store.ErrRefreshReused)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET last_used_at = ?,
			access_expires_at = CASE WHEN access_expires_at < ? THEN ? ELSE access_expires_at END WHERE id = ?`),
			micros(now), micros(accessExpiresAt), micros(accessExpiresAt), ss.ID); err != nil {
			return err
		}
		ss.LastUsedAt = now
		if accessExpiresAt.After(ss.AccessExpiresAt) {
			ss.AccessExpiresAt = accessExpiresAt
		}
		next.SessionID = ss.ID
		return s.insertRefresh(ctx, tx, next)
	})
	if err != nil {
		return store.Session{}, err
	}
	// On reuse or expiry the session is returned too, so the caller can say
	// whose session ended.
	return ss, outcome
}

// SessionByRefreshToken finds the session a refresh token belongs to.
func (s *Store) SessionByRefreshToken(ctx context.Context, hash []byte) (store.Session, error) {
	ss, err := scanSession(s.db.QueryRowContext(ctx, s.q(`SELECT `+sessionColumns+`
		FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = ?`), hash))
	return ss, s.classify(ctx, err)
}

// RevokeSession ends one session; ending an ended session changes nothing.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	return s.inTx(ctx, false, func(tx *sql.Tx) error {
		_, err := s.revokeSession(ctx, tx, id, at, reason)
		return err
	})
}

func (s *Store) revokeSession(ctx context.Context, tx *sql.Tx, id string, at time.Time, reason string) (int64, error) {
	res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL`), micros(at), reason, id)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RevokeUserSessions ends every active session of a user except exceptID
// (empty: all), and returns how many it ended.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time, reason string) (int, error) {
	var n int
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		n, err = s.revokeUserSessions(ctx, tx, userID, exceptID, at, reason)
		return err
	})
	return n, err
}

func (s *Store) revokeUserSessions(ctx context.Context, tx *sql.Tx, userID, exceptID string, at time.Time, reason string) (int, error) {
	res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`),
		micros(at), reason, userID, exceptID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// RevokedAfter lists sessions ended after the position (at, afterID) in
// (revoked_at, id) order — at or after `at` when afterID is empty — oldest
// first, at most limit of them, leaving out those whose access tokens had
// all expired by tokensLiveAt and that were last used before usedAfter (a
// replica of an older version may have issued tokens without recording
// their expiry). The id breaks ties, so a page boundary inside many
// revocations of one instant (a LogoutAll) still moves on.
func (s *Store) RevokedAfter(ctx context.Context, at time.Time, afterID string, tokensLiveAt, usedAfter time.Time, limit int) ([]store.Revocation, error) {
	us := micros(at)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, revoked_at, access_expires_at, last_used_at FROM sessions
		WHERE (revoked_at > ? OR (revoked_at = ? AND id > ?)) AND (access_expires_at > ? OR last_used_at > ?)
		ORDER BY revoked_at, id LIMIT ?`), us, us, afterID, micros(tokensLiveAt), micros(usedAfter), limit)
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var (
			r                           store.Revocation
			at, accessExpires, lastUsed int64
		)
		if err := rows.Scan(&r.SessionID, &at, &accessExpires, &lastUsed); err != nil {
			return nil, s.classify(ctx, err)
		}
		r.RevokedAt, r.LastUsedAt, r.AccessExpiresAt = fromMicros(at), fromMicros(lastUsed), fromOptionalMicros(accessExpires)
		out = append(out, r)
	}
	return out, s.classify(ctx, rows.Err())
}
