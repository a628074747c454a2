// Package revocation follows authsvc's revocation feed, so predictsvc refuses
// the access tokens of ended sessions within seconds, without calling authsvc
// per request.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
)

// Feed is authsvc's ListRevocations.
type Feed interface {
	ListRevocations(ctx context.Context, req *authv1.ListRevocationsRequest, opts ...grpc.CallOption) (*authv1.ListRevocationsResponse, error)
}

// Config tunes a Follower.
type Config struct {
	Feed Feed
	// Poll is how often the feed is read: the bound on how long a revoked
	// token keeps working.
	Poll time.Duration
	// MaxStale is how long the list may go without a successful read before
	// the follower refuses to vouch for any token (fail closed).
	MaxStale time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Follower keeps the set of ended sessions whose tokens may still be
// unexpired.
type Follower struct {
	cfg Config

	mu       sync.RWMutex
	revoked  map[string]time.Time // session id -> when to forget it
	cursor   string
	lastSync time.Time

	synced chan struct{}
	once   sync.Once
}

// ErrStale: the list has not been refreshed within MaxStale.
var ErrStale = errors.New("revocation list is stale")

// New returns a follower; call Run to start it.
func New(cfg Config) (*Follower, error) {
	if cfg.Feed == nil || cfg.Logger == nil || cfg.Now == nil {
		return nil, errors.New("revocation: Feed, Logger and Now are required")
	}
	if cfg.Poll <= 0 || cfg.MaxStale < cfg.Poll {
		return nil, fmt.Errorf("revocation: poll interval must be positive and at most the staleness limit, got %s and %s", cfg.Poll, cfg.MaxStale)
	}
	return &Follower{cfg: cfg, revoked: map[string]time.Time{}, synced: make(chan struct{})}, nil
}

// Synced is closed after the first complete read of the feed.
func (f *Follower) Synced() <-chan struct{} { return f.synced }

// Run polls until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	failing := false
	for attempt := 1; ; attempt++ {
		err := f.Sync(ctx)
		synced := false
		select {
		case <-f.synced:
			synced = true
		default:
		}
		// authsvc starting a moment after predictsvc is normal: say so quietly.
		starting := err != nil && !synced && attempt <= 10
		switch {
		case ctx.Err() != nil:
			return
		case starting:
			f.cfg.Logger.Info("waiting for authsvc's revocation feed", "err", err)
		case err != nil && !failing:
			f.cfg.Logger.Warn("reading the revocation feed failed; retrying", "err", err)
		case err == nil && failing:
			f.cfg.Logger.Info("revocation feed readable again")
		}
		if !starting {
			failing = err != nil
		}
		// Until the first complete read, retry sooner than the poll: the
		// service is not SERVING until then.
		wait := f.cfg.Poll
		if !synced {
			wait = min(wait, time.Duration(attempt)*100*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Sync reads the feed from the cursor until it has nothing more.
func (f *Follower) Sync(ctx context.Context) error {
	for page := 0; page < 100; page++ {
		callCtx, cancel := context.WithTimeout(ctx, f.cfg.MaxStale/2)
		resp, err := f.cfg.Feed.ListRevocations(callCtx, &authv1.ListRevocationsRequest{Cursor: f.currentCursor()})
		cancel()
		if err != nil {
			return err
		}
		now := f.cfg.Now()
		f.mu.Lock()
		for _, r := range resp.GetRevocations() {
			if forget := r.GetForgetTime().AsTime(); forget.After(now) {
				f.revoked[r.GetSessionId()] = forget
			}
		}
		for sid, forget := range f.revoked {
			if !forget.After(now) {
				delete(f.revoked, sid)
			}
		}
		f.cursor = resp.GetCursor()
		if !resp.GetMore() {
			f.lastSync = now
		}
		f.mu.Unlock()
		if !resp.GetMore() {
			f.once.Do(func() { close(f.synced) })
			return nil
		}
	}
	return errors.New("revocation feed did not end after 100 pages")
}

func (f *Follower) currentCursor() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cursor
}

// Fresh returns ErrStale unless the list was read within MaxStale.
func (f *Follower) Fresh(context.Context) error {
	f.mu.RLock()
	last := f.lastSync
	f.mu.RUnlock()
	if last.IsZero() {
		return fmt.Errorf("%w: never read", ErrStale)
	}
	if age := f.cfg.Now().Sub(last); age > f.cfg.MaxStale {
		return fmt.Errorf("%w: last read %s ago", ErrStale, age.Round(time.Second))
	}
	return nil
}

// IsRevoked implements token.RevocationList.
func (f *Follower) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	if err := f.Fresh(ctx); err != nil {
		return false, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, revoked := f.revoked[sessionID]
	return revoked, nil
}
