// Package jwk converts Ed25519 public keys to and from JSON Web Keys (RFC 7517,
// RFC 8037) and computes their RFC 7638 thumbprints, which mlgate uses as key ids.
package jwk

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Key is one public Ed25519 key in JWK form.
type Key struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

// Set is a JWK Set document.
type Set struct {
	Keys []Key `json:"keys"`
}

// FromPublicKey describes pub as a signing key whose kid is its thumbprint.
func FromPublicKey(pub ed25519.PublicKey) Key {
	return Key{
		Kty: "OKP",
		Crv: "Ed25519",
		X:   base64.RawURLEncoding.EncodeToString(pub),
		Kid: Thumbprint(pub),
		Use: "sig",
		Alg: "EdDSA",
	}
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an Ed25519 public key,
// base64url without padding. The members are in the lexicographic order the RFC
// requires, so the result matches what any JOSE library computes.
func Thumbprint(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// PublicKey returns the Ed25519 key k describes, after checking that it is one.
func (k Key) PublicKey() (ed25519.PublicKey, error) {
	if k.Kty != "OKP" || k.Crv != "Ed25519" {
		return nil, fmt.Errorf("jwk %q: want kty OKP and crv Ed25519, got kty %q crv %q", k.Kid, k.Kty, k.Crv)
	}
	if k.Alg != "" && k.Alg != "EdDSA" {
		return nil, fmt.Errorf("jwk %q: want alg EdDSA, got %q", k.Kid, k.Alg)
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("jwk %q: want use sig, got %q", k.Kid, k.Use)
	}
	raw, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil {
		return nil, fmt.Errorf("jwk %q: x is not base64url: %w", k.Kid, err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("jwk %q: x holds %d bytes, want %d", k.Kid, len(raw), ed25519.PublicKeySize)
	}
	if k.Kid == "" {
		return nil, errors.New("jwk: key without kid")
	}
	return ed25519.PublicKey(raw), nil
}

// ParseSet decodes a JWK Set document into its keys by kid. Keys of other types
// are an error rather than skipped: a set mlgate reads is one mlgate wrote, and a
// surprise in it should be loud.
func ParseSet(doc []byte) (map[string]ed25519.PublicKey, error) {
	var set Set
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("jwk set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("jwk set: no keys")
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		pub, err := k.PublicKey()
		if err != nil {
			return nil, err
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("jwk set: kid %q appears twice", k.Kid)
		}
		keys[k.Kid] = pub
	}
	return keys, nil
}
