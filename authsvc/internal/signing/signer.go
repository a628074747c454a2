// Package signing holds authsvc's ring of token-signing keys and issues access
// tokens with the key that is active now.
package signing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/internal/jwk"
	"github.com/mlgate/mlgate/internal/token"
)

// Config says what the tokens claim and how long they live.
type Config struct {
	Issuer   string
	Audience string
	TTL      time.Duration
}

// retireMargin keeps a superseded key published a while past the last expiry
// of the tokens it signed: verifiers' clock-skew leeway is at most 60 s.
const retireMargin = 2 * time.Minute

// KeyStore is where the ring's keys live, shared by every replica.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
}

// Ring holds every key that signs now, signed recently or will sign soon.
// The active key is the newest whose ActiveAt has passed; a rotated-in key is
// published before it activates, and a retired one until its tokens expired.
type Ring struct {
	store KeyStore
	cfg   Config
	now   func() time.Time

	mu   sync.RWMutex
	keys []store.SigningKey // by ActiveAt
}

// NewRing loads the keys; there must be at least one active.
func NewRing(ctx context.Context, ks KeyStore, cfg Config, now func() time.Time) (*Ring, error) {
	switch {
	case cfg.Issuer == "" || cfg.Audience == "":
		return nil, errors.New("signing: issuer and audience are required")
	case cfg.TTL <= 0:
		return nil, fmt.Errorf("signing: token lifetime must be positive, got %s", cfg.TTL)
	}
	r := &Ring{store: ks, cfg: cfg, now: now}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	if _, err := r.active(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the keys again, picking up a rotation.
func (r *Ring) Reload(ctx context.Context) error {
	keys, err := r.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ActiveAt.Before(keys[j].ActiveAt) })
	r.mu.Lock()
	r.keys = keys
	r.mu.Unlock()
	return nil
}

// Run reloads every interval until ctx ends, so a rotation done by another
// replica or by `authsvc rotate-key` is picked up without a restart.
// It logs each key it sees published and each change of the signing key,
// so an operator can follow a rotation in the log.
func (r *Ring) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	known := map[string]bool{}
	for _, k := range r.keysNow() {
		known[k.Kid] = true
	}
	signing := r.KeyID()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
				log.Warn("reloading signing keys failed; keeping the current ones", "err", err)
				continue
			}
			for _, k := range r.keysNow() {
				if !known[k.Kid] {
					known[k.Kid] = true
					log.Info("new signing key published in the JWK Set", "kid", k.Kid, "signs_from", k.ActiveAt.UTC().Format(time.RFC3339))
				}
			}
			if now := r.KeyID(); now != signing {
				log.Info("signing with a new key", "kid", now, "previous_kid", signing)
				signing = now
			}
		}
	}
}

func (r *Ring) keysNow() []store.SigningKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys
}

func (r *Ring) active() (store.SigningKey, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	for i := len(r.keys) - 1; i >= 0; i-- {
		if !r.keys[i].ActiveAt.After(now) {
			return r.keys[i], nil
		}
	}
	return store.SigningKey{}, errors.New("signing: no active signing key")
}

// KeyID is the kid that signs now.
func (r *Ring) KeyID() string {
	k, err := r.active()
	if err != nil {
		return ""
	}
	return k.Kid
}

// Grant is what an access token says about its bearer.
type Grant struct {
	Subject   string
	SessionID string
	Roles     []string
	Scopes    []string
	// ExpiresAt is the token's exp (whole seconds), chosen by the caller so
	// it can record it first; zero means the ring's lifetime from now. It may
	// not be further away than that lifetime: old keys are kept published
	// for that long.
	ExpiresAt time.Time
}

// Sign issues an access token for g and says when it expires.
func (r *Ring) Sign(g Grant) (string, time.Time, error) {
	key, err := r.active()
	if err != nil {
		return "", time.Time{}, err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	// JWT times are whole seconds; truncating here makes the reported expiry
	// match the exp claim exactly.
	now := r.now().Truncate(time.Second)
	exp := now.Add(r.cfg.TTL)
	if !g.ExpiresAt.IsZero() {
		if g.ExpiresAt.After(exp.Add(time.Second)) {
			return "", time.Time{}, fmt.Errorf("sign token: exp %s is more than the token lifetime %s away", g.ExpiresAt, r.cfg.TTL)
		}
		exp = g.ExpiresAt.Truncate(time.Second)
	}
	claims := token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    r.cfg.Issuer,
			Subject:   g.Subject,
			Audience:  jwt.ClaimStrings{r.cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
		SessionID: g.SessionID,
		Scope:     strings.Join(g.Scopes, " "),
		Roles:     g.Roles,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.Kid
	signed, err := t.SignedString(key.Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// published returns the keys a verifier must know: the active one first,
// then those about to activate, then retired ones whose tokens may still be
// unexpired.
func (r *Ring) published() []store.SigningKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	var active, upcoming, retired []store.SigningKey
	for i, k := range r.keys {
		switch {
		case k.ActiveAt.After(now):
			upcoming = append(upcoming, k)
		case i+1 < len(r.keys) && !r.keys[i+1].ActiveAt.After(now):
			// Superseded at r.keys[i+1].ActiveAt; its last token expires TTL later.
			if now.Before(r.keys[i+1].ActiveAt.Add(r.cfg.TTL + retireMargin)) {
				retired = append(retired, k)
			}
		default:
			active = append(active, k)
		}
	}
	return append(append(active, upcoming...), retired...)
}

// PublicKeys is the JWK Set verifiers need.
func (r *Ring) PublicKeys() jwk.Set {
	var set jwk.Set
	for _, k := range r.published() {
		set.Keys = append(set.Keys, jwk.FromPublicKey(k.Private.Public().(ed25519.PublicKey)))
	}
	return set
}

// PublicKey implements token.KeyLookup over the published keys, so authsvc
// verifies its own tokens (LogoutAll, ChangePassword, admin calls).
func (r *Ring) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	for _, k := range r.published() {
		if k.Kid == kid {
			return k.Private.Public().(ed25519.PublicKey), nil
		}
	}
	return nil, fmt.Errorf("%w %q", token.ErrUnknownKey, kid)
}

// NewKey generates a signing key that activates at activeAt.
func NewKey(now, activeAt time.Time) (store.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{Kid: jwk.Thumbprint(pub), Private: priv, CreatedAt: now, ActiveAt: activeAt}, nil
}

// LoadKeyFile reads an Ed25519 private key from a PKCS #8 PEM file (the key
// file of mlgate's first releases, imported into the store on upgrade). It
// refuses a file other users could read.
func LoadKeyFile(path string) (store.SigningKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return store.SigningKey{}, err
	}
	if !info.Mode().IsRegular() {
		return store.SigningKey{}, fmt.Errorf("signing key %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return store.SigningKey{}, fmt.Errorf("signing key %s has mode %04o: other users can read it; run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return store.SigningKey{}, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return store.SigningKey{}, fmt.Errorf("signing key %s: want a PEM \"PRIVATE KEY\" block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("signing key %s: %w", path, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return store.SigningKey{}, fmt.Errorf("signing key %s: want an Ed25519 key, got %T", path, parsed)
	}
	return store.SigningKey{Kid: jwk.Thumbprint(key.Public().(ed25519.PublicKey)), Private: key}, nil
}
