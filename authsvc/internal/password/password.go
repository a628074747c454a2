// Package password holds the password rules and bcrypt hashing.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	// MinLength is the shortest password accepted, in bytes.
	MinLength = 8
	// MaxLength is bcrypt's input limit: it ignores every byte past 72, so a
	// longer password is refused instead of being silently truncated.
	MaxLength = 72
	// DefaultCost is the bcrypt cost used unless configured otherwise.
	DefaultCost = 12
)

// InvalidError says why a password was refused. It never holds the password.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "password " + e.Reason }

// Validate checks a new password against the rules.
func Validate(pw string) error {
	switch {
	case pw == "":
		return &InvalidError{"is required"}
	case len(pw) < MinLength || len(pw) > MaxLength:
		return &InvalidError{fmt.Sprintf("must be %d to %d bytes, got %d", MinLength, MaxLength, len(pw))}
	case strings.ContainsRune(pw, 0):
		return &InvalidError{"must not contain NUL bytes"}
	}
	return nil
}

// Hasher hashes and checks passwords with bcrypt at one cost.
type Hasher struct {
	cost  int
	dummy []byte
	// comparisonNanos is a running estimate of one comparison at cost, kept
	// from the hasher's own work: a cheaper check is padded to it.
	comparisonNanos atomic.Int64
}

// NewHasher returns a hasher for cost. It also hashes a random password at that
// cost, so a login for an unknown email can spend the same time comparing.
func NewHasher(cost int) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost must be between %d and %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, cost)
	}
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	start := time.Now()
	dummy, err := bcrypt.GenerateFromPassword(random, cost)
	if err != nil {
		return nil, err
	}
	h := &Hasher{cost: cost, dummy: dummy}
	h.comparisonNanos.Store(int64(time.Since(start)))
	return h, nil
}

// observe folds the duration of one bcrypt operation at the hasher's cost
// into the estimate (an exponential moving average; a lost update under
// concurrency only delays it).
func (h *Hasher) observe(d time.Duration) {
	old := h.comparisonNanos.Load()
	h.comparisonNanos.Store(old + (int64(d)-old)/8)
}

// ComparisonTime is the estimated duration of one comparison at the
// configured cost.
func (h *Hasher) ComparisonTime() time.Duration {
	return time.Duration(h.comparisonNanos.Load())
}

// cheaper reports whether checking against hash costs less than the
// configured cost (a hash from before the cost was raised).
func (h *Hasher) cheaper(hash []byte) bool {
	cost, err := bcrypt.Cost(hash)
	return err == nil && cost < h.cost
}

// Hash returns the bcrypt hash of a password that passed Validate.
func (h *Hasher) Hash(pw string) ([]byte, error) {
	if err := Validate(pw); err != nil {
		return nil, err
	}
	start := time.Now()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), h.cost)
	h.observe(time.Since(start))
	return hash, err
}

// Matches reports whether pw is the password behind hash. A password over
// MaxLength never matches, even when its first 72 bytes do.
func (h *Hasher) Matches(hash []byte, pw string) (bool, error) {
	if len(pw) > MaxLength {
		// Burn the same time as a real comparison, then refuse.
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(pw[:MaxLength]))
		return false, nil
	}
	start := time.Now()
	err := bcrypt.CompareHashAndPassword(hash, []byte(pw))
	if !h.NeedsRehash(hash) { // only a comparison at the configured cost
		h.observe(time.Since(start))
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("stored password hash: %w", err)
	}
}

// NeedsRehash reports whether hash was made at another cost than the
// configured one. Logins rehash such passwords, so that every stored hash
// costs the same to check and failed-login timing stays uniform after a cost
// change.
func (h *Hasher) NeedsRehash(hash []byte) bool {
	cost, err := bcrypt.Cost(hash)
	return err != nil || cost != h.cost
}

// SpendComparison does the work of one comparison against a hash no password
// matches, so that a login for an unknown email takes as long as a real one.
func (h *Hasher) SpendComparison(pw string) {
	if len(pw) > MaxLength {
		pw = pw[:MaxLength]
	}
	start := time.Now()
	_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(pw))
	h.observe(time.Since(start))
}
