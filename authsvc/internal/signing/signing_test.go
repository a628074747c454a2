package signing

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mlgate/mlgate/authsvc/internal/sqlitestore"
	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/internal/jwk"
	"github.com/mlgate/mlgate/internal/syncbuf"
	"github.com/mlgate/mlgate/internal/token"
)

// keyStore is a real SQLite store in a temporary directory.
type keyStore struct {
	*sqlstore.Store
	t *testing.T
}

func newKeyStore(t *testing.T) keyStore {
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return keyStore{s, t}
}

func (k keyStore) add(key store.SigningKey) {
	if err := k.AddSigningKey(context.Background(), key); err != nil {
		k.t.Fatal(err)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 500, time.UTC)

func mustKey(t *testing.T, active time.Time) store.SigningKey {
	k, err := NewKey(t0, active)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func kidOf(t *testing.T, raw string) string {
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &token.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header["kid"].(string)
}

func publishedKids(r *Ring) []string {
	var kids []string
	for _, k := range r.PublicKeys().Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestSignClaims(t *testing.T) {
	keys := newKeyStore(t)
	k1 := mustKey(t, t0)
	keys.add(k1)
	c := &clock{t: t0}
	r, err := NewRing(context.Background(), keys, Config{Issuer: "iss", Audience: "aud", TTL: 15 * time.Minute}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	raw, exp, err := r.Sign(Grant{Subject: "user-1", SessionID: "s1", Roles: []string{"user"}, Scopes: []string{"predict", "models:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Truncate(time.Second).Add(15 * time.Minute)) {
		t.Errorf("expiry = %s", exp)
	}
	var claims token.Claims
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithoutClaimsValidation()).ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) {
		return k1.Private.Public(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != jwk.Thumbprint(k1.Private.Public().(ed25519.PublicKey)) || r.KeyID() != k1.Kid {
		t.Errorf("kid = %v", tok.Header["kid"])
	}
	if claims.Issuer != "iss" || claims.Subject != "user-1" || claims.Audience[0] != "aud" || claims.SessionID != "s1" ||
		claims.Scope != "predict models:read" || len(claims.Roles) != 1 || len(claims.ID) < 16 ||
		!claims.IssuedAt.Time.Equal(t0.Truncate(time.Second)) || !claims.ExpiresAt.Time.Equal(exp) {
		t.Errorf("claims = %+v", claims)
	}
}

// A rotated-in key is published before it signs; the old key stays published
// until every token it signed has expired, then leaves the set.
func TestRotation(t *testing.T) {
	keys := newKeyStore(t)
	old, next := mustKey(t, t0), mustKey(t, t0.Add(10*time.Minute))
	keys.add(old)
	c := &clock{t: t0}
	ttl := 15 * time.Minute
	r, err := NewRing(context.Background(), keys, Config{Issuer: "i", Audience: "a", TTL: ttl}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	keys.add(next)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at         time.Time
		signer     string
		published  []string
		verifiable []string
	}{
		{t0.Add(5 * time.Minute), old.Kid, []string{old.Kid, next.Kid}, nil},
		{t0.Add(10 * time.Minute), next.Kid, []string{next.Kid, old.Kid}, nil},
		{t0.Add(10*time.Minute + ttl + time.Minute), next.Kid, []string{next.Kid, old.Kid}, nil},
		{t0.Add(10*time.Minute + ttl + retireMargin + time.Second), next.Kid, []string{next.Kid}, nil},
	}
	for _, s := range steps {
		c.set(s.at)
		raw, _, err := r.Sign(Grant{Subject: "u", SessionID: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if got := kidOf(t, raw); got != s.signer {
			t.Errorf("at %s signed with %s, want %s", s.at.Sub(t0), got, s.signer)
		}
		if got := publishedKids(r); len(got) != len(s.published) || got[0] != s.published[0] || (len(got) > 1 && got[1] != s.published[1]) {
			t.Errorf("at %s published %v, want %v", s.at.Sub(t0), got, s.published)
		}
	}
}

func TestNewRingRejects(t *testing.T) {
	keys := newKeyStore(t)
	if _, err := NewRing(context.Background(), keys, Config{Issuer: "i", Audience: "a", TTL: time.Minute}, time.Now); err == nil {
		t.Error("NewRing with no keys succeeded")
	}
	keys.add(mustKey(t, time.Now().Add(time.Hour)))
	if _, err := NewRing(context.Background(), keys, Config{Issuer: "i", Audience: "a", TTL: time.Minute}, time.Now); err == nil {
		t.Error("NewRing with only a future key succeeded")
	}
	for name, cfg := range map[string]Config{
		"no issuer":   {Audience: "a", TTL: time.Minute},
		"no audience": {Issuer: "i", TTL: time.Minute},
		"zero ttl":    {Issuer: "i", Audience: "a"},
	} {
		if _, err := NewRing(context.Background(), keys, cfg, time.Now); err == nil {
			t.Errorf("%s: NewRing succeeded", name)
		}
	}
}

// An operator follows a rotation in the log: the ring says when it sees a
// new key published and when it starts signing with it.
func TestRunLogsARotation(t *testing.T) {
	keys := newKeyStore(t)
	old := mustKey(t, t0)
	keys.add(old)
	c := &clock{t: t0}
	r, err := NewRing(context.Background(), keys, Config{Issuer: "i", Audience: "a", TTL: 15 * time.Minute}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, 5*time.Millisecond, slog.New(slog.NewTextHandler(logs, nil))); close(done) }()
	defer func() { cancel(); <-done }()
	next := mustKey(t, t0.Add(time.Minute))
	keys.add(next)
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("log never said %q:\n%s", want, logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(`msg="new signing key published in the JWK Set" kid=` + next.Kid)
	if strings.Contains(logs.String(), "signing with a new key") {
		t.Fatalf("switch logged before the key is active:\n%s", logs)
	}
	c.set(t0.Add(time.Minute))
	waitFor(`msg="signing with a new key" kid=` + next.Kid + " previous_kid=" + old.Kid)
}
