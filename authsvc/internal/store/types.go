// Package store defines what authsvc persists and the errors every store
// implementation returns, so the domain can react to them without knowing
// the database.
package store

import (
	"errors"
	"time"
)

// User is a stored account.
type User struct {
	ID           string
	Email        string // canonical form (see package email)
	PasswordHash []byte // bcrypt
	CreatedAt    time.Time
}

var (
	// ErrEmailTaken: another user already has this canonical email.
	ErrEmailTaken = errors.New("email already registered")
	// ErrNotFound: no user matches.
	ErrNotFound = errors.New("user not found")
	// ErrStoreUnavailable: the store cannot answer now; the caller may retry.
	ErrStoreUnavailable = errors.New("user store unavailable")
)
