// Package throttle limits login attempts per account and per client address,
// with its counters in the store so that every replica enforces one limit.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"time"
)

// Counters are fixed-window hit counters (the store provides them).
type Counters interface {
	CountHit(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error)
	PeekCount(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error)
	ResetCount(ctx context.Context, key string) error
}

// Policy is the limits.
type Policy struct {
	// AccountFailures failed logins for one email within AccountWindow lock
	// further attempts for that email until the window ends.
	AccountFailures int
	AccountWindow   time.Duration
	// AddressAttempts logins of any outcome from one client address within
	// AddressWindow are allowed.
	AddressAttempts int
	AddressWindow   time.Duration
}

// DefaultPolicy follows common practice: Zitadel slows logins after 5
// failures; Supabase Auth allows 150 token requests per 5 minutes per address.
func DefaultPolicy() Policy {
	return Policy{AccountFailures: 5, AccountWindow: 15 * time.Minute, AddressAttempts: 150, AddressWindow: 5 * time.Minute}
}

// Validate checks the limits are usable.
func (p Policy) Validate() error {
	switch {
	case p.AccountFailures < 1:
		return fmt.Errorf("failures per account must be at least 1, got %d", p.AccountFailures)
	case p.AddressAttempts < 1:
		return fmt.Errorf("attempts per address must be at least 1, got %d", p.AddressAttempts)
	case p.AccountWindow <= 0:
		return fmt.Errorf("the failure window must be positive, got %s", p.AccountWindow)
	case p.AddressWindow <= 0:
		return fmt.Errorf("the address window must be positive, got %s", p.AddressWindow)
	}
	return nil
}

// ThrottledError says a login was refused before any password check, and
// when to retry. Its message is the same whether or not the account exists.
type ThrottledError struct {
	RetryAfter time.Duration
	// First is set on the refusal that crossed the limit, so a flood is
	// recorded once per window rather than once per attempt.
	First bool
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many login attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// Limiter applies a Policy.
type Limiter struct {
	counters Counters
	policy   Policy
	now      func() time.Time
}

// New returns a limiter.
func New(c Counters, p Policy, now func() time.Time) (*Limiter, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{counters: c, policy: p, now: now}, nil
}

// accountKey hides the email: the counters table holds no addresses.
func accountKey(canonicalEmail string) string {
	sum := sha256.Sum256([]byte(canonicalEmail))
	return "acct:" + hex.EncodeToString(sum[:16])
}

func addressKey(clientAddr string) string {
	host, _, err := net.SplitHostPort(clientAddr)
	if err != nil {
		host = clientAddr
	}
	return "addr:" + host
}

// Allow counts a password attempt from clientAddr against the email and
// refuses it when the address or the email is over its limit. It runs before
// any password work and treats registered and unknown emails alike. Every
// attempt counts until a success clears the email's count, so that concurrent
// guesses cannot all pass the check before any of them has failed.
func (l *Limiter) Allow(ctx context.Context, canonicalEmail, clientAddr string) error {
	if err := l.AllowAddress(ctx, "login", clientAddr); err != nil {
		return err
	}
	return l.hit(ctx, accountKey(canonicalEmail), l.policy.AccountFailures, l.policy.AccountWindow)
}

// AllowAddress counts an attempt of kind (login, register) from clientAddr
// against the per-address limit.
func (l *Limiter) AllowAddress(ctx context.Context, kind, clientAddr string) error {
	if clientAddr == "" {
		return nil
	}
	return l.hit(ctx, kind+":"+addressKey(clientAddr), l.policy.AddressAttempts, l.policy.AddressWindow)
}

// hit counts an attempt against key, refusing it past limit. A key already
// past its limit is refused on a read alone: a flood of refused attempts
// costs no writes.
func (l *Limiter) hit(ctx context.Context, key string, limit int, window time.Duration) error {
	now := l.now()
	n, end, err := l.counters.PeekCount(ctx, key, now, window)
	if err != nil {
		return err
	}
	if n > limit {
		return &ThrottledError{RetryAfter: end.Sub(now)}
	}
	if n, end, err = l.counters.CountHit(ctx, key, now, window); err != nil {
		return err
	}
	if n > limit {
		return &ThrottledError{RetryAfter: end.Sub(now), First: n == limit+1}
	}
	return nil
}

// Retention is how long a counter matters: the longest window.
func (p Policy) Retention() time.Duration {
	return max(p.AccountWindow, p.AddressWindow)
}

// Clear lifts the email's lock (the operator's `authsvc unlock`) and says
// whether it had any attempts counted.
func (l *Limiter) Clear(ctx context.Context, canonicalEmail string) (bool, error) {
	key := accountKey(canonicalEmail)
	n, _, err := l.counters.PeekCount(ctx, key, l.now(), l.policy.AccountWindow)
	if err != nil {
		return false, err
	}
	return n > 0, l.counters.ResetCount(ctx, key)
}

// Succeeded clears the email's attempts.
func (l *Limiter) Succeeded(ctx context.Context, canonicalEmail string) error {
	return l.counters.ResetCount(ctx, accountKey(canonicalEmail))
}
