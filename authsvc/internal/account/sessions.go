package account

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/internal/token"
)

// maxRefreshTokenBytes bounds what Refresh and Logout will hash: mlgate's
// refresh tokens are 49 bytes.
const maxRefreshTokenBytes = 256

func checkRefreshToken(tok string) error {
	switch {
	case tok == "":
		return &ValidationError{Field: "refresh_token", Reason: "is required"}
	case len(tok) > maxRefreshTokenBytes:
		return &ValidationError{Field: "refresh_token", Reason: "is too long to be a refresh token"}
	}
	return nil
}

// Refresh exchanges a refresh token for a new pair. Reusing a spent token
// ends its session (the store does that atomically).
func (s *Service) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	if err := checkRefreshToken(refresh); err != nil {
		return Tokens{}, err
	}
	now := s.now().UTC()
	next, nextHash, err := newRefreshToken()
	if err != nil {
		return Tokens{}, err
	}
	sess, err := s.store.RotateRefreshToken(ctx, hashRefreshToken(refresh), store.RefreshToken{Hash: nextHash, CreatedAt: now}, now, s.cfg.Sessions.Idle)
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		s.audit(ctx, "refresh_reuse", sess.UserID, "", "denied", "spent refresh token presented again; session "+sess.ID+" ended")
		return Tokens{}, ErrInvalidRefreshToken
	case errors.Is(err, store.ErrSessionEnded):
		s.audit(ctx, "refresh", sess.UserID, "", "failure", "unknown token or ended session")
		return Tokens{}, ErrInvalidRefreshToken
	case err != nil:
		return Tokens{}, err
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil {
		return Tokens{}, err
	}
	if u.Disabled() {
		// DisableUser ends the sessions too; this covers the moment between.
		return Tokens{}, ErrInvalidRefreshToken
	}
	tokens, err := s.issue(u, sess, next, now)
	if err != nil {
		return Tokens{}, err
	}
	s.audit(ctx, "refresh", u.ID, u.Email, "success", "session "+sess.ID)
	return tokens, nil
}

// Logout ends the session of a refresh token. An unknown or spent token is
// not an error (RFC 7009): the caller's goal, no live session, holds.
func (s *Service) Logout(ctx context.Context, refresh string) error {
	if err := checkRefreshToken(refresh); err != nil {
		return err
	}
	sess, err := s.store.SessionByRefreshToken(ctx, hashRefreshToken(refresh))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.store.RevokeSession(ctx, sess.ID, s.now().UTC(), "logout"); err != nil {
		return err
	}
	s.audit(ctx, "logout", sess.UserID, "", "success", "session "+sess.ID)
	return nil
}

// LogoutAll ends every session of the caller.
func (s *Service) LogoutAll(ctx context.Context, caller token.Principal) (int, error) {
	n, err := s.store.RevokeUserSessions(ctx, caller.Subject, "", s.now().UTC(), "logout_all")
	if err != nil {
		return 0, err
	}
	s.audit(ctx, "logout_all", caller.Subject, "", "success", strconv.Itoa(n)+" sessions ended")
	return n, nil
}

// ChangePassword checks the current password, stores the new one and ends
// the caller's other sessions.
func (s *Service) ChangePassword(ctx context.Context, caller token.Principal, oldPassword, newPassword string) (int, error) {
	if oldPassword == "" {
		return 0, &ValidationError{Field: "old_password", Reason: "is required"}
	}
	if err := password.Validate(newPassword); err != nil {
		return 0, invalid("new_password", err)
	}
	u, err := s.store.UserByID(ctx, caller.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return 0, ErrUnknownUser
	}
	if err != nil {
		return 0, err
	}
	ok, err := s.hasher.Matches(ctx, u.PasswordHash, oldPassword)
	if err != nil {
		return 0, err
	}
	if !ok {
		s.audit(ctx, "password_change", u.ID, u.Email, "failure", "wrong old password")
		return 0, ErrWrongPassword
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return 0, err
	}
	if err := s.store.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return 0, err
	}
	n, err := s.store.RevokeUserSessions(ctx, u.ID, caller.SessionID, s.now().UTC(), "password_change")
	if err != nil {
		return 0, err
	}
	s.audit(ctx, "password_change", u.ID, u.Email, "success", strconv.Itoa(n)+" other sessions ended")
	return n, nil
}

// IsRevoked implements token.RevocationList from the store itself, for the
// tokens authsvc verifies (LogoutAll, ChangePassword, admin calls): fresher
// than any feed.
func (s *Service) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	sess, err := s.store.Session(ctx, sessionID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return sess.Revoked(), nil
}

// Revocation is an ended session as verifiers see it.
type Revocation struct {
	SessionID string
	RevokedAt time.Time
	ForgetAt  time.Time
}

// revocationOverlap re-reads this much before the cursor, so a revocation
// committed a little after a later one (replica clocks, slow transactions)
// is not skipped. Verifiers de-duplicate.
const revocationOverlap = 30 * time.Second

// revocationPage bounds one answer of the feed.
const revocationPage = 5000

// exactCursor marks a cursor to resume at exactly, after a full page.
const exactCursor = "="

// Revocations lists sessions ended since cursor. The cursor is opaque to
// callers: the microsecond of the newest revocation returned.
func (s *Service) Revocations(ctx context.Context, cursor string) ([]Revocation, string, bool, error) {
	now := s.now().UTC()
	// Anything revoked before this can only have tokens that have expired.
	horizon := now.Add(-(s.cfg.AccessTTL + retainMargin))
	since := horizon
	if cursor != "" {
		exact := strings.HasPrefix(cursor, exactCursor)
		us, err := strconv.ParseInt(strings.TrimPrefix(cursor, exactCursor), 10, 64)
		if err != nil {
			return nil, "", false, &ValidationError{Field: "cursor", Reason: "is not a cursor from ListRevocations"}
		}
		since = time.UnixMicro(us).UTC()
		if !exact {
			since = since.Add(-revocationOverlap)
		}
		if since.Before(horizon) {
			since = horizon
		}
	}
	rows, err := s.store.RevokedSince(ctx, since, revocationPage)
	if err != nil {
		return nil, "", false, err
	}
	out := make([]Revocation, len(rows))
	next := cursor
	for i, r := range rows {
		out[i] = Revocation{SessionID: r.SessionID, RevokedAt: r.RevokedAt, ForgetAt: r.RevokedAt.Add(s.cfg.AccessTTL + retainMargin)}
		next = strconv.FormatInt(r.RevokedAt.UnixMicro(), 10)
	}
	more := len(rows) == revocationPage
	if more {
		next = exactCursor + next
	}
	return out, next, more, nil
}

// retainMargin covers verifiers' clock-skew leeway (at most 60 s) and
// clock differences between replicas.
const retainMargin = 2 * time.Minute
