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
	case !strings.HasPrefix(tok, token.RefreshTokenPrefix) && strings.Count(tok, ".") == 2:
		return &ValidationError{Field: "refresh_token", Reason: "is an access token (a JWT); send the refresh_token that Login or Refresh returned (it starts with " + token.RefreshTokenPrefix + ")"}
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
	accessExp := s.accessExpiry(now)
	sess, err := s.store.RotateRefreshToken(ctx, hashRefreshToken(refresh), store.RefreshToken{Hash: nextHash, CreatedAt: now}, now, s.cfg.Sessions.Idle, accessExp)
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
	tokens, err := s.issue(u, sess, next, now, accessExp)
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
	// The old password is a password check like a login's: throttled the
	// same way, so a stolen access token cannot guess it without limit.
	if s.throttle != nil {
		if err := s.throttle.Allow(ctx, u.Email, clientAddr(ctx)); err != nil {
			s.auditThrottled(ctx, "password_change", u.ID, u.Email, err)
			return 0, err
		}
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
	n, err := s.store.ChangePassword(ctx, u.ID, hash, caller.SessionID, s.now().UTC())
	if err != nil {
		return 0, err
	}
	if s.throttle != nil {
		if err := s.throttle.Succeeded(ctx, u.Email); err != nil {
			s.log.WarnContext(ctx, "clearing password attempts failed", "err", err)
		}
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

// tokensMayLive gives the two bounds forgetAt applies, for the store: a
// session may still have a live access token if its recorded expiry is
// after tokensLiveAt, or (expiry not recorded) it was used after usedAfter.
func (s *Service) tokensMayLive(now time.Time) (tokensLiveAt, usedAfter time.Time) {
	tokensLiveAt = now.Add(-retainMargin)
	return tokensLiveAt, tokensLiveAt.Add(-s.cfg.AccessTTL)
}

// forgetAt is when verifiers may forget a revocation: once the session's
// last access token has expired, plus their clock-skew leeway. A replica of
// an older version (during a rolling upgrade) issues tokens without
// recording their expiry; for those, the last use plus this lifetime.
func (s *Service) forgetAt(r store.Revocation) time.Time {
	last := r.LastUsedAt.Add(s.cfg.AccessTTL)
	if r.AccessExpiresAt.After(last) {
		last = r.AccessExpiresAt
	}
	return last.Add(retainMargin)
}

// exactCursor marks a cursor to resume at exactly, after a full page.
const exactCursor = "="

// Revocations lists sessions ended since cursor. The cursor is opaque to
// callers: the microsecond of the newest revocation returned.
func (s *Service) Revocations(ctx context.Context, cursor string) ([]Revocation, string, bool, error) {
	now := s.now().UTC()
	// Anything revoked before this can only have tokens that have expired,
	// whatever lifetime they were issued with.
	horizon := now.Add(-(MaxAccessTTL + retainMargin))
	at, afterID := horizon, ""
	if cursor != "" {
		us, id, exact, err := parseCursor(cursor)
		if err != nil {
			return nil, "", false, &ValidationError{Field: "cursor", Reason: "is not a cursor from ListRevocations"}
		}
		at = time.UnixMicro(us).UTC()
		if exact {
			afterID = id
		} else {
			at = at.Add(-revocationOverlap)
		}
		// A cursor from the future (a replica's fast clock, a made-up value)
		// must not hide revocations to come.
		if latest := now.Add(-revocationOverlap); at.After(latest) {
			at, afterID = latest, ""
		}
		if at.Before(horizon) {
			at, afterID = horizon, ""
		}
	}
	tokensLiveAt, usedAfter := s.tokensMayLive(now)
	rows, err := s.store.RevokedAfter(ctx, at, afterID, tokensLiveAt, usedAfter, revocationPage)
	if err != nil {
		return nil, "", false, err
	}
	out := make([]Revocation, len(rows))
	next := cursor
	for i, r := range rows {
		out[i] = Revocation{SessionID: r.SessionID, RevokedAt: r.RevokedAt, ForgetAt: s.forgetAt(r)}
	}
	more := len(rows) == revocationPage
	if len(rows) > 0 {
		last := rows[len(rows)-1]
		next = strconv.FormatInt(last.RevokedAt.UnixMicro(), 10)
		if more {
			// Resume exactly after the last row, even inside one instant.
			next = exactCursor + next + ":" + last.SessionID
		}
	}
	return out, next, more, nil
}

// parseCursor reads "MICROS" (resume with an overlap) or "=MICROS:ID" (resume
// exactly after that row).
func parseCursor(c string) (us int64, id string, exact bool, err error) {
	if rest, ok := strings.CutPrefix(c, exactCursor); ok {
		num, sid, found := strings.Cut(rest, ":")
		if !found {
			return 0, "", false, errors.New("bad cursor")
		}
		us, err = strconv.ParseInt(num, 10, 64)
		return us, sid, true, err
	}
	us, err = strconv.ParseInt(c, 10, 64)
	return us, "", false, err
}

// retainMargin covers verifiers' clock-skew leeway (at most 60 s) and
// clock differences between replicas.
const retainMargin = 2 * time.Minute
