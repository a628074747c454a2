// Package keysource supplies predictsvc with authsvc's public signing keys:
// fetched from a JWKS URL and kept fresh, or read once from a local file.
package keysource

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/mlgate/mlgate/internal/jwk"
	"github.com/mlgate/mlgate/internal/token"
)

// maxJWKSBytes bounds a fetched key set; a real one is a few hundred bytes.
const maxJWKSBytes = 1 << 20

// Static is a fixed key set, such as one read from a file.
type Static map[string]ed25519.PublicKey

// LoadFile reads a JWK Set file. A file other users could write is refused:
// whoever writes it decides which tokens are valid.
func LoadFile(path string) (Static, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: other users can change the trusted keys; run chmod go-w %s", path, perm, path)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := jwk.ParseSet(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Static(keys), nil
}

// PublicKey returns the key for kid.
func (s Static) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", token.ErrUnknownKey, kid)
}

// RemoteConfig tunes a Remote.
type RemoteConfig struct {
	URL    string
	Client *http.Client
	// Refresh is how often the set is refetched while all is well.
	Refresh time.Duration
	// MinInterval is the least time between two fetches, so tokens with made-up
	// kids cannot turn predictsvc into a load generator against authsvc.
	MinInterval time.Duration
	Logger      *slog.Logger
}

// Remote caches the key set served at a JWKS URL. It keeps serving the last
// good set while the URL is unreachable (authsvc restarting), refetches
// periodically, and refetches early when a token names a kid it lacks.
type Remote struct {
	cfg RemoteConfig

	mu        sync.RWMutex
	keys      map[string]ed25519.PublicKey
	lastFetch time.Time // last attempt, successful or not

	fetchMu sync.Mutex // one fetch at a time
	loaded  chan struct{}
	once    sync.Once
}

// NewRemote returns a Remote; call Run to start fetching.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if cfg.URL == "" || cfg.Client == nil || cfg.Logger == nil {
		return nil, errors.New("keysource: URL, Client and Logger are required")
	}
	if cfg.Refresh <= 0 || cfg.MinInterval <= 0 {
		return nil, errors.New("keysource: Refresh and MinInterval must be positive")
	}
	return &Remote{cfg: cfg, loaded: make(chan struct{})}, nil
}

// Loaded is closed once the first key set has been fetched.
func (r *Remote) Loaded() <-chan struct{} { return r.loaded }

// Run fetches until ctx ends: retrying with backoff until the first success,
// then every Refresh.
func (r *Remote) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		wait := r.cfg.Refresh
		if err := r.fetch(ctx); err != nil {
			r.logFetchFailure(attempt, err)
			wait = backoff
			backoff = min(backoff*2, 5*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// logFetchFailure keeps start-up quiet: authsvc starting a moment after
// predictsvc is normal, so the first failures before any key set has arrived
// are INFO; failures after that, or for long, are warnings.
func (r *Remote) logFetchFailure(attempt int, err error) {
	r.mu.RLock()
	loaded := r.keys != nil
	r.mu.RUnlock()
	if !loaded && attempt <= 10 {
		r.cfg.Logger.Info("waiting for authsvc's JWKS", "url", Redact(r.cfg.URL), "err", err)
		return
	}
	if !loaded {
		r.cfg.Logger.Warn("fetching JWKS failed; no signing keys yet, so every call is UNAVAILABLE", "url", Redact(r.cfg.URL), "err", err)
		return
	}
	r.cfg.Logger.Warn("fetching JWKS failed; keeping the keys already known", "url", Redact(r.cfg.URL), "err", err)
}

// PublicKey returns the key for kid, refetching once (rate-limited) if the
// kid is new: that is how a rotated-in key is picked up without a restart.
func (r *Remote) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := r.lookup(kid); ok {
		return k, nil
	}
	r.refetchForUnknownKid(ctx)
	if k, ok := r.lookup(kid); ok {
		return k, nil
	}
	r.mu.RLock()
	loaded := r.keys != nil
	r.mu.RUnlock()
	if !loaded {
		return nil, token.ErrKeysUnavailable
	}
	return nil, fmt.Errorf("%w %q", token.ErrUnknownKey, kid)
}

func (r *Remote) lookup(kid string) (ed25519.PublicKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[kid]
	return k, ok
}

// refetchForUnknownKid fetches at once, unless a fetch is under way (callers
// must not queue behind a slow JWKS endpoint) or one happened within
// MinInterval (made-up kids must not turn predictsvc into a load generator).
func (r *Remote) refetchForUnknownKid(ctx context.Context) {
	if !r.fetchMu.TryLock() {
		return
	}
	defer r.fetchMu.Unlock()
	r.mu.RLock()
	recent := time.Since(r.lastFetch) < r.cfg.MinInterval
	r.mu.RUnlock()
	if recent {
		return
	}
	if err := r.fetchLocked(ctx); err != nil {
		r.cfg.Logger.Warn("refetching JWKS for an unknown kid failed", "err", err)
	}
}

// fetch reads the key set now; the periodic refresh uses it.
func (r *Remote) fetch(ctx context.Context) error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	return r.fetchLocked(ctx)
}

// fetchLocked needs fetchMu held.
func (r *Remote) fetchLocked(ctx context.Context) error {
	keys, err := r.get(ctx)
	r.mu.Lock()
	r.lastFetch = time.Now()
	if err == nil {
		r.keys = keys
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.once.Do(func() { close(r.loaded) })
	return nil
}

// Redact hides credentials in a URL before it reaches a log line: the
// password of its user info, and its query and fragment, where API keys and
// signed-URL signatures live.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = "redacted", ""
	}
	return u.Redacted()
}

func (r *Remote) get(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", Redact(r.cfg.URL), resp.Status)
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(doc) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", Redact(r.cfg.URL), maxJWKSBytes)
	}
	return jwk.ParseSet(doc)
}
