package keysource

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/jwk"
	"github.com/mlgate/mlgate/internal/token"
)

// jwksServer serves a key set that the test can change and count fetches of.
type jwksServer struct {
	mu      sync.Mutex
	set     jwk.Set
	status  int
	fetches atomic.Int32
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	json.NewEncoder(w).Encode(s.set)
}

func (s *jwksServer) serve(keys ...ed25519.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = 0
	s.set = jwk.Set{}
	for _, k := range keys {
		s.set.Keys = append(s.set.Keys, jwk.FromPublicKey(k))
	}
}

func (s *jwksServer) fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func newKey(t *testing.T) ed25519.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func newRemote(t *testing.T, url string, minInterval time.Duration) *Remote {
	t.Helper()
	r, err := NewRemote(RemoteConfig{
		URL: url, Client: &http.Client{Timeout: time.Second}, Refresh: time.Hour, MinInterval: minInterval,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func startRun(t *testing.T, r *Remote) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go r.Run(ctx)
	select {
	case <-r.Loaded():
	case <-time.After(5 * time.Second):
		t.Fatal("key set never loaded")
	}
}

func TestRemoteLoadsAndServesKeys(t *testing.T) {
	srv := &jwksServer{}
	k1 := newKey(t)
	srv.serve(k1)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := newRemote(t, ts.URL, time.Hour)
	startRun(t, r)
	got, err := r.PublicKey(context.Background(), jwk.Thumbprint(k1))
	if err != nil || !got.Equal(k1) {
		t.Fatalf("PublicKey = %v, %v", got, err)
	}
}

// The first fetch failing (authsvc not up yet) is retried until it works.
func TestRemoteRetriesUntilFirstSuccess(t *testing.T) {
	srv := &jwksServer{}
	srv.fail(http.StatusServiceUnavailable)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := newRemote(t, ts.URL, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	for srv.fetches.Load() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-r.Loaded():
		t.Fatal("Loaded closed although every fetch failed")
	default:
	}
	if _, err := r.PublicKey(context.Background(), "any"); !errors.Is(err, token.ErrKeysUnavailable) {
		t.Fatalf("PublicKey before any key set = %v, want ErrKeysUnavailable", err)
	}
	k := newKey(t)
	srv.serve(k)
	select {
	case <-r.Loaded():
	case <-time.After(5 * time.Second):
		t.Fatal("never loaded after the server recovered")
	}
}

// A rotated-in key is fetched when a token first names it; made-up kids do
// not cause more than one fetch per MinInterval.
func TestRemoteUnknownKidRefetchIsRateLimited(t *testing.T) {
	srv := &jwksServer{}
	k1, k2 := newKey(t), newKey(t)
	srv.serve(k1)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := newRemote(t, ts.URL, 200*time.Millisecond)
	startRun(t, r)
	srv.serve(k1, k2)
	time.Sleep(250 * time.Millisecond) // past MinInterval since the first fetch
	before := srv.fetches.Load()
	if got, err := r.PublicKey(context.Background(), jwk.Thumbprint(k2)); err != nil || !got.Equal(k2) {
		t.Fatalf("rotated-in key: %v, %v", got, err)
	}
	for range 50 {
		_, err := r.PublicKey(context.Background(), "made-up-kid")
		if !errors.Is(err, token.ErrUnknownKey) {
			t.Fatalf("made-up kid: %v, want ErrUnknownKey", err)
		}
	}
	if n := srv.fetches.Load() - before; n != 1 {
		t.Fatalf("%d fetches for one new kid and 50 made-up ones, want 1", n)
	}
}

// While the JWKS endpoint is down, the keys already known keep working.
func TestRemoteKeepsKeysWhileEndpointDown(t *testing.T) {
	srv := &jwksServer{}
	k1 := newKey(t)
	srv.serve(k1)
	ts := httptest.NewServer(srv)
	r := newRemote(t, ts.URL, time.Millisecond)
	startRun(t, r)
	ts.Close()
	time.Sleep(5 * time.Millisecond)
	if _, err := r.PublicKey(context.Background(), "unknown"); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("unknown kid while down: %v", err)
	}
	if got, err := r.PublicKey(context.Background(), jwk.Thumbprint(k1)); err != nil || !got.Equal(k1) {
		t.Fatalf("known key while the endpoint is down: %v, %v", got, err)
	}
}

func TestRemoteRejectsBadDocuments(t *testing.T) {
	tests := map[string]string{
		"not json":      "{",
		"empty set":     `{"keys":[]}`,
		"wrong key typ": `{"keys":[{"kty":"RSA","kid":"a"}]}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
			defer ts.Close()
			r := newRemote(t, ts.URL, time.Hour)
			if err := r.fetch(context.Background()); err == nil {
				t.Fatal("fetch accepted a bad document")
			}
		})
	}
	t.Run("oversized", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write(make([]byte, maxJWKSBytes+10))
		}))
		defer ts.Close()
		if err := newRemote(t, ts.URL, time.Hour).fetch(context.Background()); err == nil {
			t.Fatal("fetch accepted an oversized document")
		}
	})
}

func TestLoadFile(t *testing.T) {
	k := newKey(t)
	doc, _ := json.Marshal(jwk.Set{Keys: []jwk.Key{jwk.FromPublicKey(k)}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := keys.PublicKey(context.Background(), jwk.Thumbprint(k)); err != nil || !got.Equal(k) {
		t.Fatalf("PublicKey = %v, %v", got, err)
	}
	if _, err := keys.PublicKey(context.Background(), "other"); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
	writable := filepath.Join(t.TempDir(), "writable.json")
	if err := os.WriteFile(writable, doc, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(writable, 0o666)
	if _, err := LoadFile(writable); err == nil || !strings.Contains(err.Error(), "chmod go-w") {
		t.Fatalf("LoadFile of a world-writable file = %v", err)
	}
	if _, err := LoadFile(t.TempDir()); err == nil {
		t.Fatal("LoadFile of a directory succeeded")
	}
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"http://u:secret@127.0.0.1:1/jwks.json":           "http://u:xxxxx@127.0.0.1:1/jwks.json",
		"https://keys.example/jwks.json?key=secret":       "https://keys.example/jwks.json?redacted",
		"https://keys.example/jwks.json#secret":           "https://keys.example/jwks.json#redacted",
		"http://authsvc:8081/.well-known/jwks.json":       "http://authsvc:8081/.well-known/jwks.json",
		"https://keys.example/jwks.json?sig=a&secret=b#c": "https://keys.example/jwks.json?redacted#redacted",
	} {
		got := Redact(raw)
		if strings.Contains(got, "secret") || got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

// The periodic refresh is not held back by the on-demand rate limit: a key
// published by a rotation arrives within one refresh interval.
func TestRemotePeriodicRefreshIgnoresRateLimit(t *testing.T) {
	srv := &jwksServer{}
	k1, k2 := newKey(t), newKey(t)
	srv.serve(k1)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r, err := NewRemote(RemoteConfig{
		URL: ts.URL, Client: &http.Client{Timeout: time.Second}, Refresh: 20 * time.Millisecond, MinInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	startRun(t, r)
	srv.serve(k1, k2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := r.lookup(jwk.Thumbprint(k2)); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the periodic refresh never picked up the new key")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
