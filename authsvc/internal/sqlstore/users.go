package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

const userColumns = `id, email, password_hash, roles, created_at, disabled_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (store.User, error) {
	var (
		u        store.User
		roles    string
		created  int64
		disabled sql.NullInt64
	)
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &roles, &created, &disabled); err != nil {
		return store.User{}, err
	}
	u.Roles = strings.Fields(roles)
	u.CreatedAt, u.DisabledAt = fromMicros(created), fromNullMicros(disabled)
	return u, nil
}

// CreateUser inserts u; store.ErrEmailTaken if its email exists. The row is
// committed before CreateUser returns.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (id, email, password_hash, roles, created_at) VALUES (?, ?, ?, ?, ?)`),
		u.ID, u.Email, u.PasswordHash, strings.Join(u.Roles, " "), micros(u.CreatedAt))
	return s.classify(ctx, err)
}

// UserByEmail finds a user by canonical email.
func (s *Store) UserByEmail(ctx context.Context, canonicalEmail string) (store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE email = ?`), canonicalEmail))
	return u, s.classify(ctx, err)
}

// UserByID finds a user by id.
func (s *Store) UserByID(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
	return u, s.classify(ctx, err)
}

// ListUsers returns up to limit users with ids after afterID, in id order.
func (s *Store) ListUsers(ctx context.Context, afterID string, limit int) ([]store.User, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`), afterID, limit)
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.classify(ctx, err)
		}
		out = append(out, u)
	}
	return out, s.classify(ctx, rows.Err())
}

// ChangePassword stores a new hash and ends the user's other sessions in one
// transaction, so that no login checked against the old password can slip a
// session in between (see CreateSession).
func (s *Store) ChangePassword(ctx context.Context, userID string, hash []byte, exceptSession string, at time.Time) (int, error) {
	var ended int
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ? WHERE id = ?`), hash, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return store.ErrNotFound
		}
		ended, err = s.revokeUserSessions(ctx, tx, userID, exceptSession, at, "password_change")
		return err
	})
	return ended, err
}

// UpgradePasswordHash replaces a user's password hash with one of the same
// password at the current bcrypt cost, only if the hash is still the one the
// password was checked against: a password changed meanwhile stays changed.
// ErrNotFound when the user is gone or its hash is no longer checked.
func (s *Store) UpgradePasswordHash(ctx context.Context, userID string, checked, upgraded []byte) error {
	return s.updateUser(ctx, `UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`, upgraded, userID, checked)
}

// SetRoles replaces a user's roles.
func (s *Store) SetRoles(ctx context.Context, userID string, roles []string) error {
	return s.updateUser(ctx, `UPDATE users SET roles = ? WHERE id = ?`, strings.Join(roles, " "), userID)
}

func (s *Store) updateUser(ctx context.Context, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return s.classify(ctx, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// EnableUser clears the disabled mark.
func (s *Store) EnableUser(ctx context.Context, userID string) error {
	return s.updateUser(ctx, `UPDATE users SET disabled_at = NULL WHERE id = ?`, userID)
}

// DisableUser marks the user disabled and revokes all of its sessions, in one
// transaction. It returns how many sessions it ended.
func (s *Store) DisableUser(ctx context.Context, userID string, at time.Time) (int, error) {
	var ended int
	err := s.inTx(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?`), micros(at), userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return store.ErrNotFound
		}
		ended, err = s.revokeUserSessions(ctx, tx, userID, "", at, "user_disabled")
		return err
	})
	return ended, err
}
