// Package account is authsvc's domain: registering users, checking their
// passwords, keeping their sessions, and the admin and audit functions. It
// knows nothing of gRPC or of which database holds the users.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/mlgate/mlgate/authsvc/internal/email"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/internal/token"
)

// Store keeps users, sessions and the audit log. CreateUser must return
// store.ErrEmailTaken when the canonical email exists, atomically, so that
// concurrent registrations of one email give exactly one success.
type Store interface {
	CreateUser(ctx context.Context, u store.User) error
	UserByEmail(ctx context.Context, canonicalEmail string) (store.User, error)
	UserByID(ctx context.Context, id string) (store.User, error)
	ListUsers(ctx context.Context, afterID string, limit int) ([]store.User, error)
	UpgradePasswordHash(ctx context.Context, userID string, checked, upgraded []byte) error
	ChangePassword(ctx context.Context, userID string, hash []byte, exceptSession string, at time.Time) (int, error)
	SetRoles(ctx context.Context, userID string, roles []string) error
	DisableUser(ctx context.Context, userID string, at time.Time) (int, error)
	EnableUser(ctx context.Context, userID string) error

	CreateSession(ctx context.Context, s store.Session, first store.RefreshToken, checkedHash []byte) error
	Session(ctx context.Context, id string) (store.Session, error)
	RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, now time.Time, idle time.Duration, accessExpiresAt time.Time) (store.Session, error)
	SessionByRefreshToken(ctx context.Context, hash []byte) (store.Session, error)
	RevokeSession(ctx context.Context, id string, at time.Time, reason string) error
	RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time, reason string) (int, error)
	RevokedAfter(ctx context.Context, at time.Time, afterID string, tokensLiveAt, usedAfter time.Time, limit int) ([]store.Revocation, error)

	AppendAudit(ctx context.Context, e store.AuditEvent) error
	Prune(ctx context.Context, c store.PruneCutoffs) (store.Pruned, error)
	ListAudit(ctx context.Context, beforeID int64, limit int, userID string) ([]store.AuditEvent, error)
}

// PasswordHasher hashes new passwords and checks presented ones, on a
// bounded pool (password.ErrBusy when it is full).
type PasswordHasher interface {
	Hash(ctx context.Context, pw string) ([]byte, error)
	Matches(ctx context.Context, hash []byte, pw string) (bool, error)
	NeedsRehash(hash []byte) bool
	SpendComparison(ctx context.Context, pw string) error
}

// LoginThrottle limits password attempts per email and per client address.
type LoginThrottle interface {
	Allow(ctx context.Context, canonicalEmail, clientAddr string) error
	AllowAddress(ctx context.Context, kind, clientAddr string) error
	Succeeded(ctx context.Context, canonicalEmail string) error
	Clear(ctx context.Context, canonicalEmail string) (bool, error)
}

// TokenSigner issues access tokens.
type TokenSigner interface {
	Sign(g signing.Grant) (token string, expiresAt time.Time, err error)
}

var (
	// ErrBadCredentials is the one answer to every failed login, whether or
	// not the email is registered (or the account disabled).
	ErrBadCredentials = errors.New("invalid email or password")
	// ErrInvalidRefreshToken is the one answer to every refused refresh.
	ErrInvalidRefreshToken = errors.New("refresh token is invalid, spent or expired; log in again")
	// ErrWrongPassword: ChangePassword's current password does not match.
	ErrWrongPassword = errors.New("old_password: does not match the current password")
	// ErrPermissionDenied: the caller lacks the role the operation needs.
	ErrPermissionDenied = errors.New("this needs the admin role")
	// ErrUnknownUser: an admin operation names no existing account.
	ErrUnknownUser = errors.New("user_id: no such user")
)

// ValidationError names the request field that broke a rule and the rule.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// invalid turns a rule's error into a ValidationError for field.
func invalid(field string, err error) error {
	var emailErr *email.InvalidError
	var passwordErr *password.InvalidError
	switch {
	case errors.As(err, &emailErr):
		return &ValidationError{Field: field, Reason: emailErr.Reason}
	case errors.As(err, &passwordErr):
		return &ValidationError{Field: field, Reason: passwordErr.Reason}
	}
	return &ValidationError{Field: field, Reason: err.Error()}
}

// SessionPolicy bounds how long a login lasts.
type SessionPolicy struct {
	// Idle ends a session not refreshed for this long.
	Idle time.Duration
	// Absolute ends a session this long after login, however active.
	Absolute time.Duration
}

// MaxAccessTTL bounds the access-token lifetime: a token cannot be recalled
// by anything but the revocation feed, so it must not live long.
const MaxAccessTTL = 24 * time.Hour

// Config is the policy the service applies.
type Config struct {
	Sessions SessionPolicy
	Roles    RolePolicy
	// AccessTTL is the access tokens' lifetime, at most MaxAccessTTL.
	AccessTTL time.Duration
	// Events, when set, is told of every audited event (for metrics).
	Events func(kind, outcome string)
	// AuditRetention is how long audit events are kept; 0 keeps them all.
	AuditRetention time.Duration
	// CounterRetention is how long a login-throttling counter matters (the
	// longest throttling window).
	CounterRetention time.Duration
}

// Service registers users, logs them in and keeps their sessions.
type Service struct {
	store    Store
	hasher   PasswordHasher
	signer   TokenSigner
	throttle LoginThrottle
	cfg      Config
	now      func() time.Time
	log      *slog.Logger

	registering emailLocks
}

// NewService wires the domain to its dependencies. signer and throttle may be
// nil for operator commands, which neither sign nor log anyone in.
func NewService(st Store, hasher PasswordHasher, signer TokenSigner, throttle LoginThrottle, cfg Config, now func() time.Time, log *slog.Logger) (*Service, error) {
	switch {
	case cfg.Sessions.Idle <= 0 || cfg.Sessions.Absolute <= 0:
		return nil, errors.New("account: session idle and absolute lifetimes must be positive")
	case cfg.Sessions.Idle > cfg.Sessions.Absolute:
		return nil, fmt.Errorf("account: session idle timeout %s exceeds the absolute lifetime %s", cfg.Sessions.Idle, cfg.Sessions.Absolute)
	case cfg.AccessTTL <= 0 || cfg.AccessTTL > MaxAccessTTL:
		return nil, fmt.Errorf("account: access token lifetime must be positive and at most %s, got %s", MaxAccessTTL, cfg.AccessTTL)
	}
	if err := cfg.Roles.Validate(); err != nil {
		return nil, err
	}
	return &Service{store: st, hasher: hasher, signer: signer, throttle: throttle, cfg: cfg, now: now, log: log}, nil
}

// Register creates a user with the default role and returns its id.
func (s *Service) Register(ctx context.Context, rawEmail, pw string) (string, error) {
	canonical, err := email.Canonical(rawEmail)
	if err != nil {
		return "", invalid("email", err)
	}
	if err := password.Validate(pw); err != nil {
		return "", invalid("password", err)
	}
	// Registering costs a bcrypt hash: one address may not spend them all.
	if s.throttle != nil {
		if err := s.throttle.AllowAddress(ctx, "register", clientAddr(ctx)); err != nil {
			return "", err
		}
	}
	unlock, err := s.registering.lock(ctx, canonical)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Register says whether an email is taken anyway (ALREADY_EXISTS), so
	// looking first reveals nothing and saves the hash.
	switch _, err := s.store.UserByEmail(ctx, canonical); {
	case err == nil:
		s.audit(ctx, "register", "", canonical, "failure", "email already registered")
		return "", store.ErrEmailTaken
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	u := store.User{ID: id.String(), Email: canonical, PasswordHash: hash, Roles: []string{RoleUser}, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrEmailTaken) {
			s.audit(ctx, "register", "", canonical, "failure", "email already registered")
		}
		return "", err
	}
	s.audit(ctx, "register", u.ID, canonical, "success", "")
	return u.ID, nil
}

// Tokens is what a login or refresh hands out.
type Tokens struct {
	Access         string
	AccessExpires  time.Time
	Refresh        string
	RefreshExpires time.Time
	SessionID      string
}

// Login checks the password, starts a session and issues its tokens.
func (s *Service) Login(ctx context.Context, rawEmail, pw string) (Tokens, error) {
	canonical, err := email.Canonical(rawEmail)
	if err != nil {
		return Tokens{}, invalid("email", err)
	}
	if pw == "" {
		return Tokens{}, &ValidationError{Field: "password", Reason: "is required"}
	}
	// Throttling comes before any lookup or bcrypt work, and keys on the
	// email whether or not it is registered, so a throttled answer reveals
	// nothing about the account.
	if s.throttle != nil {
		if err := s.throttle.Allow(ctx, canonical, clientAddr(ctx)); err != nil {
			s.auditThrottled(ctx, "login", "", canonical, err)
			return Tokens{}, err
		}
	}
	u, err := s.store.UserByEmail(ctx, canonical)
	if errors.Is(err, store.ErrNotFound) {
		// Same bcrypt work as a wrong password, so timing does not tell
		// whether the email is registered.
		if err := s.hasher.SpendComparison(ctx, pw); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, s.loginFailed(ctx, "", canonical, "failure", "unknown email")
	}
	if err != nil {
		return Tokens{}, err
	}
	ok, err := s.hasher.Matches(ctx, u.PasswordHash, pw)
	if err != nil {
		return Tokens{}, err
	}
	switch {
	case !ok:
		return Tokens{}, s.loginFailed(ctx, u.ID, canonical, "failure", "wrong password")
	case u.Disabled():
		return Tokens{}, s.loginFailed(ctx, u.ID, canonical, "denied", "account disabled")
	}
	tokens, err := s.startSession(ctx, u)
	if errors.Is(err, store.ErrSessionEnded) {
		// The password changed or the account was disabled while this
		// login waited for bcrypt.
		return Tokens{}, s.loginFailed(ctx, u.ID, canonical, "denied", "account changed during login")
	}
	if err != nil {
		return Tokens{}, err
	}
	if s.hasher.NeedsRehash(u.PasswordHash) {
		s.rehash(ctx, u.ID, u.PasswordHash, pw)
	}
	if s.throttle != nil {
		if err := s.throttle.Succeeded(ctx, canonical); err != nil {
			s.log.WarnContext(ctx, "clearing login failures failed", "err", err)
		}
	}
	s.audit(ctx, "login", u.ID, canonical, "success", "session "+tokens.SessionID)
	return tokens, nil
}

// loginFailed records a failed login (the throttle counted the attempt
// already) and returns the one answer every failure gets.
func (s *Service) loginFailed(ctx context.Context, userID, canonical, outcome, detail string) error {
	s.audit(ctx, "login", userID, canonical, outcome, detail)
	return ErrBadCredentials
}

// rehash upgrades a hash made at an old bcrypt cost. It changes nothing if
// the password changed since it was checked (a ChangePassword racing this
// login must win); failing only leaves the old hash, so it is logged rather
// than returned.
func (s *Service) rehash(ctx context.Context, userID string, checked []byte, pw string) {
	hash, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = s.store.UpgradePasswordHash(ctx, userID, checked, hash)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.log.DebugContext(ctx, "password changed during login; its hash is not upgraded", "user_id", userID)
	case err != nil:
		s.log.WarnContext(ctx, "rehashing a password at the configured cost failed", "user_id", userID, "err", err)
	}
}

func (s *Service) startSession(ctx context.Context, u store.User) (Tokens, error) {
	now := s.now().UTC()
	sid, err := randomToken(16)
	if err != nil {
		return Tokens{}, err
	}
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return Tokens{}, err
	}
	accessExp := s.accessExpiry(now)
	sess := store.Session{ID: sid, UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.cfg.Sessions.Absolute), AccessExpiresAt: accessExp}
	if err := s.store.CreateSession(ctx, sess, store.RefreshToken{Hash: hash, SessionID: sid, CreatedAt: now}, u.PasswordHash); err != nil {
		return Tokens{}, err
	}
	return s.issue(u, sess, refresh, now, accessExp)
}

// accessExpiry is the exp of an access token issued at now. The session
// records it before the token exists, so that a revocation is remembered as
// long as the session's tokens live, whatever the lifetime is later set to.
func (s *Service) accessExpiry(now time.Time) time.Time {
	return now.Truncate(time.Second).Add(s.cfg.AccessTTL)
}

func (s *Service) issue(u store.User, sess store.Session, refresh string, now, accessExp time.Time) (Tokens, error) {
	access, exp, err := s.signer.Sign(signing.Grant{
		Subject: u.ID, SessionID: sess.ID, Roles: u.Roles, Scopes: s.cfg.Roles.Scopes(u.Roles), ExpiresAt: accessExp,
	})
	if err != nil {
		return Tokens{}, err
	}
	refreshExp := now.Add(s.cfg.Sessions.Idle)
	if sess.ExpiresAt.Before(refreshExp) {
		refreshExp = sess.ExpiresAt
	}
	return Tokens{Access: access, AccessExpires: exp, Refresh: refresh, RefreshExpires: refreshExp, SessionID: sess.ID}, nil
}

// newRefreshToken returns a token of 256 random bits and the SHA-256 hash
// that is all the store keeps of it.
func newRefreshToken() (string, []byte, error) {
	raw, err := randomToken(32)
	if err != nil {
		return "", nil, err
	}
	// The prefix lets secret scanners, and the services, recognise one.
	tok := token.RefreshTokenPrefix + raw
	return tok, hashRefreshToken(tok), nil
}

func hashRefreshToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
