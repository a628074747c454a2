// Package account is authsvc's domain: registering users and checking their
// passwords. It knows nothing of gRPC or of which database holds the users.
package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mlgate/mlgate/authsvc/internal/email"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// Store keeps users. CreateUser must return store.ErrEmailTaken when the
// canonical email exists, atomically, so that concurrent registrations of one
// email give exactly one success.
type Store interface {
	CreateUser(ctx context.Context, u store.User) error
	UserByEmail(ctx context.Context, canonicalEmail string) (store.User, error)
}

// PasswordHasher hashes new passwords and checks presented ones.
type PasswordHasher interface {
	Hash(pw string) ([]byte, error)
	Matches(hash []byte, pw string) (bool, error)
	SpendComparison(pw string)
}

// TokenSigner issues an access token for a user id.
type TokenSigner interface {
	Sign(subject string) (token string, expiresAt time.Time, err error)
}

// ErrBadCredentials is the one answer to every failed login, whether or not
// the email is registered.
var ErrBadCredentials = errors.New("invalid email or password")

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

// Service registers users and logs them in.
type Service struct {
	store  Store
	hasher PasswordHasher
	signer TokenSigner
	now    func() time.Time
}

// NewService wires the domain to its dependencies.
func NewService(store Store, hasher PasswordHasher, signer TokenSigner, now func() time.Time) *Service {
	return &Service{store: store, hasher: hasher, signer: signer, now: now}
}

// Register creates a user and returns its id.
func (s *Service) Register(ctx context.Context, rawEmail, pw string) (string, error) {
	canonical, err := email.Canonical(rawEmail)
	if err != nil {
		return "", invalid("email", err)
	}
	if err := password.Validate(pw); err != nil {
		return "", invalid("password", err)
	}
	hash, err := s.hasher.Hash(pw)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	u := store.User{ID: id.String(), Email: canonical, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return "", err
	}
	return u.ID, nil
}

// Login checks the password and issues an access token.
func (s *Service) Login(ctx context.Context, rawEmail, pw string) (token string, expiresAt time.Time, err error) {
	canonical, err := email.Canonical(rawEmail)
	if err != nil {
		return "", time.Time{}, invalid("email", err)
	}
	if pw == "" {
		return "", time.Time{}, &ValidationError{Field: "password", Reason: "is required"}
	}
	u, err := s.store.UserByEmail(ctx, canonical)
	if errors.Is(err, store.ErrNotFound) {
		// Same bcrypt work as a wrong password, so timing does not tell
		// whether the email is registered.
		s.hasher.SpendComparison(pw)
		return "", time.Time{}, ErrBadCredentials
	}
	if err != nil {
		return "", time.Time{}, err
	}
	ok, err := s.hasher.Matches(u.PasswordHash, pw)
	if err != nil {
		return "", time.Time{}, err
	}
	if !ok {
		return "", time.Time{}, ErrBadCredentials
	}
	return s.signer.Sign(u.ID)
}
