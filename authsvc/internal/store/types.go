// Package store defines what authsvc persists and the errors every store
// implementation returns, so the domain can react to them without knowing
// the database.
package store

import (
	"crypto/ed25519"
	"errors"
	"time"
)

// User is a stored account.
type User struct {
	ID           string
	Email        string // canonical form (see package email)
	PasswordHash []byte // bcrypt
	Roles        []string
	CreatedAt    time.Time
	DisabledAt   time.Time // zero while the account is enabled
}

// Disabled reports whether an admin disabled the account.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

// Session is one login: the family of refresh tokens that descend from it
// and the access tokens they mint (which carry its ID as `sid`).
type Session struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastUsedAt time.Time // login or last refresh: the idle clock
	ExpiresAt  time.Time // absolute end, whatever the activity
	// AccessExpiresAt is the latest exp of an access token issued in the
	// session: its revocation matters to verifiers until then.
	AccessExpiresAt time.Time
	RevokedAt       time.Time // zero while active
	// RevokeReason says why it ended: "logout", "logout_all", "password_change",
	// "refresh_reuse", "user_disabled", "idle", "expired".
	RevokeReason string
}

// Revoked reports whether the session was ended.
func (s Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// RefreshToken is a stored refresh token: only its SHA-256 hash is kept.
type RefreshToken struct {
	Hash      []byte
	SessionID string
	CreatedAt time.Time
}

// Revocation is an ended session, as the revocation feed reports it.
type Revocation struct {
	SessionID       string
	RevokedAt       time.Time
	AccessExpiresAt time.Time // the session's last access token expires then (zero: not recorded)
	LastUsedAt      time.Time // its last login or refresh
}

// SigningKey is an Ed25519 key that signs access tokens from ActiveAt on.
type SigningKey struct {
	Kid       string
	Private   ed25519.PrivateKey
	CreatedAt time.Time
	ActiveAt  time.Time
}

// AuditEvent is one recorded auth event. It never holds a secret.
type AuditEvent struct {
	ID         int64
	At         time.Time
	Kind       string // register, login, refresh, refresh_reuse, logout, ...
	UserID     string // empty when no account matched
	Email      string
	ClientAddr string
	Outcome    string // success, failure, denied, ...
	Detail     string
}

var (
	// ErrEmailTaken: another user already has this canonical email.
	ErrEmailTaken = errors.New("email already registered")
	// ErrNotFound: nothing matches.
	ErrNotFound = errors.New("not found")
	// ErrStoreUnavailable: the store cannot answer now; the caller may retry.
	ErrStoreUnavailable = errors.New("user store unavailable")
	// ErrRefreshReused: a refresh token was presented after it had been
	// exchanged. The store has revoked its session.
	ErrRefreshReused = errors.New("refresh token reused")
	// ErrSessionEnded: the refresh token's session was revoked, went idle or
	// reached its absolute lifetime.
	ErrSessionEnded = errors.New("session ended")
)

// PruneCutoffs says what housekeeping may delete.
type PruneCutoffs struct {
	// Sessions that ended, or passed ExpiresAt by Now, or were last used
	// before IdleBefore, once every access token issued in them expired
	// before TokensExpiredBefore and they were last used before UsedBefore
	// (for sessions whose token expiry a replica of an older version did not
	// record); with their refresh tokens.
	Now, IdleBefore, TokensExpiredBefore, UsedBefore time.Time
	// Throttle counters whose window started before CountersBefore; zero
	// keeps them.
	CountersBefore time.Time
	// Audit events recorded before AuditBefore; zero keeps every event.
	AuditBefore time.Time
}

// Pruned counts what housekeeping deleted.
type Pruned struct {
	Sessions, Counters, AuditEvents int
}
