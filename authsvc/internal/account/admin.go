package account

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/mlgate/mlgate/authsvc/internal/email"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/internal/token"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageSize(n int) (int, error) {
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n < 0 || n > maxPageSize:
		return 0, &ValidationError{Field: "page_size", Reason: fmt.Sprintf("must be between 1 and %d, got %d", maxPageSize, n)}
	}
	return n, nil
}

// requireAdmin checks the caller's stored roles, not the token's claim: a
// removed admin role or a disabled account takes effect at once.
func (s *Service) requireAdmin(ctx context.Context, caller token.Principal) error {
	u, err := s.store.UserByID(ctx, caller.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return ErrPermissionDenied
	}
	if err != nil {
		return err
	}
	if u.Disabled() || !slices.Contains(u.Roles, RoleAdmin) {
		return ErrPermissionDenied
	}
	return nil
}

// canonicalUserID checks a user id and returns it in the one spelling the
// store holds (lower-case, hyphenated): uuid.Parse also takes upper case,
// braces and urn:uuid: prefixes, which would otherwise name no one, or slip
// past a comparison with the caller's own id.
func canonicalUserID(field, id string) (string, error) {
	if id == "" {
		return "", &ValidationError{Field: field, Reason: "is required"}
	}
	parsed, err := uuid.Parse(id)
	if err != nil {
		return "", &ValidationError{Field: field, Reason: "is not a user id"}
	}
	return parsed.String(), nil
}

// ListUsers pages through accounts in id order.
func (s *Service) ListUsers(ctx context.Context, caller token.Principal, size int, pageToken string) ([]store.User, string, error) {
	if err := s.requireAdmin(ctx, caller); err != nil {
		return nil, "", err
	}
	n, err := pageSize(size)
	if err != nil {
		return nil, "", err
	}
	after := ""
	if pageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err == nil {
			after, err = canonicalUserID("page_token", string(raw))
		}
		if err != nil {
			return nil, "", &ValidationError{Field: "page_token", Reason: "is not a token from ListUsers"}
		}
	}
	users, err := s.store.ListUsers(ctx, after, n)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(users) == n {
		next = base64.RawURLEncoding.EncodeToString([]byte(users[len(users)-1].ID))
	}
	return users, next, nil
}

// DisableUser disables an account and ends its sessions.
func (s *Service) DisableUser(ctx context.Context, caller token.Principal, userID string) (int, error) {
	if err := s.requireAdmin(ctx, caller); err != nil {
		return 0, err
	}
	userID, err := canonicalUserID("user_id", userID)
	if err != nil {
		return 0, err
	}
	if userID == caller.Subject {
		return 0, &ValidationError{Field: "user_id", Reason: "is your own account; another admin must disable it"}
	}
	n, err := s.store.DisableUser(ctx, userID, s.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return 0, ErrUnknownUser
	}
	if err != nil {
		return 0, err
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return 0, err
	}
	s.audit(ctx, "user_disabled", userID, u.Email, "success", fmt.Sprintf("by %s; %d sessions ended", caller.Subject, n))
	return n, nil
}

// EnableUser lets a disabled account log in again.
func (s *Service) EnableUser(ctx context.Context, caller token.Principal, userID string) (store.User, error) {
	if err := s.requireAdmin(ctx, caller); err != nil {
		return store.User{}, err
	}
	userID, err := canonicalUserID("user_id", userID)
	if err != nil {
		return store.User{}, err
	}
	if err := s.store.EnableUser(ctx, userID); errors.Is(err, store.ErrNotFound) {
		return store.User{}, ErrUnknownUser
	} else if err != nil {
		return store.User{}, err
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return store.User{}, err
	}
	s.audit(ctx, "user_enabled", userID, u.Email, "success", "by "+caller.Subject)
	return u, nil
}

// Unlock clears an email's failed-login count, lifting a lock before its
// window ends (the operator's `authsvc unlock`); cleared says whether any
// attempts were counted.
func (s *Service) Unlock(ctx context.Context, rawEmail string) (canonical string, cleared bool, err error) {
	canonical, err = email.Canonical(rawEmail)
	if err != nil {
		return "", false, invalid("email", err)
	}
	if s.throttle == nil {
		return "", false, errors.New("no login throttle configured")
	}
	if cleared, err = s.throttle.Clear(ctx, canonical); err != nil {
		return "", false, err
	}
	if cleared {
		s.audit(ctx, "login_unlocked", "", canonical, "success", "by operator")
	}
	return canonical, cleared, nil
}

// SetRoles replaces an account's roles; they apply to its next tokens.
func (s *Service) SetRoles(ctx context.Context, caller token.Principal, userID string, roles []string) (store.User, error) {
	if err := s.requireAdmin(ctx, caller); err != nil {
		return store.User{}, err
	}
	userID, err := canonicalUserID("user_id", userID)
	if err != nil {
		return store.User{}, err
	}
	if userID == caller.Subject && !slices.Contains(roles, RoleAdmin) {
		return store.User{}, &ValidationError{Field: "roles", Reason: "would remove your own admin role; another admin must do that"}
	}
	return s.setRoles(ctx, userID, roles, caller.Subject)
}

func (s *Service) setRoles(ctx context.Context, userID string, roles []string, by string) (store.User, error) {
	clean, err := s.checkRoles(roles)
	if err != nil {
		return store.User{}, err
	}
	if err := s.store.SetRoles(ctx, userID, clean); errors.Is(err, store.ErrNotFound) {
		return store.User{}, ErrUnknownUser
	} else if err != nil {
		return store.User{}, err
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return store.User{}, err
	}
	s.audit(ctx, "roles_changed", userID, u.Email, "success", "roles "+strings.Join(clean, " ")+" by "+by)
	return u, nil
}

func (s *Service) checkRoles(roles []string) ([]string, error) {
	var clean []string
	for _, r := range roles {
		if !s.cfg.Roles.Known(r) {
			return nil, &ValidationError{Field: "roles", Reason: fmt.Sprintf("unknown role %q (the policy has %s)", r, s.cfg.Roles)}
		}
		if !slices.Contains(clean, r) {
			clean = append(clean, r)
		}
	}
	if !slices.Contains(clean, RoleUser) {
		clean = append([]string{RoleUser}, clean...)
	}
	return clean, nil
}

// GrantRole adds a role to the account with this email. It is the operator's
// command (`authsvc grant-role`) that makes the first admin; it needs access
// to the store, not a token. added is false when the account had the role.
func (s *Service) GrantRole(ctx context.Context, rawEmail, role string) (u store.User, added bool, err error) {
	canonical, err := email.Canonical(rawEmail)
	if err != nil {
		return store.User{}, false, invalid("email", err)
	}
	u, err = s.store.UserByEmail(ctx, canonical)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, fmt.Errorf("no account with email %s: register it first", canonical)
	}
	if err != nil {
		return store.User{}, false, err
	}
	if slices.Contains(u.Roles, role) {
		return u, false, nil
	}
	u, err = s.setRoles(ctx, u.ID, append(slices.Clone(u.Roles), role), "operator")
	return u, err == nil, err
}

// AuditLog pages through recorded events, newest first.
func (s *Service) AuditLog(ctx context.Context, caller token.Principal, size int, pageToken, userID string) ([]store.AuditEvent, string, error) {
	if err := s.requireAdmin(ctx, caller); err != nil {
		return nil, "", err
	}
	n, err := pageSize(size)
	if err != nil {
		return nil, "", err
	}
	if userID != "" {
		if userID, err = canonicalUserID("user_id", userID); err != nil {
			return nil, "", err
		}
	}
	var before int64
	if pageToken != "" {
		if before, err = strconv.ParseInt(pageToken, 10, 64); err != nil || before <= 0 {
			return nil, "", &ValidationError{Field: "page_token", Reason: "is not a token from ListAuditEvents"}
		}
	}
	events, err := s.store.ListAudit(ctx, before, n, userID)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(events) == n {
		next = strconv.FormatInt(events[len(events)-1].ID, 10)
	}
	return events, next, nil
}
