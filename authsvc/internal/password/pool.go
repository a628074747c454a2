package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// ErrBusy: every bcrypt worker is busy and the queue is full. Answered at
// once, so a login flood cannot build a backlog that starves other calls.
var ErrBusy = errors.New("too many password checks in progress")

// Pool runs a Hasher's bcrypt work on a bounded number of workers with a
// bounded queue in front of them.
type Pool struct {
	h       *Hasher
	workers chan struct{} // a token per running bcrypt
	admit   chan struct{} // a token per running or queued bcrypt
}

// DefaultWorkers leaves a core for everything else (health, JWKS, refresh,
// predictions on the same machine).
func DefaultWorkers() int { return max(1, runtime.NumCPU()-1) }

// NewPool bounds h to workers concurrent hashes and queue waiting ones.
func NewPool(h *Hasher, workers, queue int) (*Pool, error) {
	if workers < 1 || queue < 0 {
		return nil, fmt.Errorf("bcrypt pool: want at least 1 worker and a non-negative queue, got %d and %d", workers, queue)
	}
	return &Pool{h: h, workers: make(chan struct{}, workers), admit: make(chan struct{}, workers+queue)}, nil
}

func (p *Pool) run(ctx context.Context, work func()) error {
	select {
	case p.admit <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-p.admit }()
	select {
	case p.workers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.workers }()
	work()
	return nil
}

// Hash hashes a new password on the pool.
func (p *Pool) Hash(ctx context.Context, pw string) ([]byte, error) {
	if err := Validate(pw); err != nil {
		return nil, err
	}
	var (
		hash []byte
		err  error
	)
	if runErr := p.run(ctx, func() { hash, err = p.h.Hash(pw) }); runErr != nil {
		return nil, runErr
	}
	return hash, err
}

// Matches checks a password on the pool. A mismatch against a hash made at
// a lower cost than the configured one (before the cost was raised; a
// successful login upgrades it) is padded to the time of a comparison at
// the configured cost, so that failed logins of registered and unknown
// emails take as long. The padding waits off the pool.
func (p *Pool) Matches(ctx context.Context, hash []byte, pw string) (bool, error) {
	var (
		ok   bool
		err  error
		took time.Duration // the comparison alone, not the queue before it
	)
	if runErr := p.run(ctx, func() {
		start := time.Now()
		ok, err = p.h.Matches(hash, pw)
		took = time.Since(start)
	}); runErr != nil {
		return false, runErr
	}
	if !ok && err == nil && p.h.cheaper(hash) {
		if pad := p.h.ComparisonTime() - took; pad > 0 {
			timer := time.NewTimer(pad)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
	}
	return ok, err
}

// SpendComparison burns one comparison's time on the pool (unknown emails).
func (p *Pool) SpendComparison(ctx context.Context, pw string) error {
	return p.run(ctx, func() { p.h.SpendComparison(pw) })
}

// NeedsRehash reports whether hash was made at another cost.
func (p *Pool) NeedsRehash(hash []byte) bool { return p.h.NeedsRehash(hash) }
