package httpapi

import (
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mlgate/mlgate/internal/jwk"
)

type fixedKeys struct{ set jwk.Set }

func (f fixedKeys) PublicKeys() jwk.Set { return f.set }

func TestJWKSEndpoint(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	mux := http.NewServeMux()
	Register(mux, fixedKeys{jwk.Set{Keys: []jwk.Key{jwk.FromPublicKey(pub)}}})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET jwks = %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	keys, err := jwk.ParseSet(body)
	if err != nil {
		t.Fatal(err)
	}
	if !keys[jwk.Thumbprint(pub)].Equal(pub) {
		t.Fatalf("served set %s lacks the key", body)
	}
	post, err := http.Post(srv.URL+JWKSPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST jwks = %s, want 405", post.Status)
	}
}
