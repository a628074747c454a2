// Package signing holds authsvc's token-signing key and issues access tokens.
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mlgate/mlgate/internal/jwk"
	"github.com/mlgate/mlgate/internal/token"
)

// Config says what the tokens claim and how long they live.
type Config struct {
	Issuer   string
	Audience string
	TTL      time.Duration
}

// Signer signs access tokens with one Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
	kid string
	cfg Config
	now func() time.Time
}

// NewSigner returns a signer; now is the clock (time.Now in production).
func NewSigner(key ed25519.PrivateKey, cfg Config, now func() time.Time) (*Signer, error) {
	switch {
	case len(key) != ed25519.PrivateKeySize:
		return nil, errors.New("signer: not an Ed25519 private key")
	case cfg.Issuer == "" || cfg.Audience == "":
		return nil, errors.New("signer: issuer and audience are required")
	case cfg.TTL <= 0:
		return nil, fmt.Errorf("signer: token lifetime must be positive, got %s", cfg.TTL)
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Signer{key: key, kid: jwk.Thumbprint(pub), cfg: cfg, now: now}, nil
}

// Sign issues an access token for the user id subject and says when it expires.
func (s *Signer) Sign(subject string) (string, time.Time, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, err
	}
	// JWT times are whole seconds; truncating here makes the reported expiry
	// match the exp claim exactly.
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.cfg.TTL)
	claims := token.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    s.cfg.Issuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{s.cfg.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        base64.RawURLEncoding.EncodeToString(jti),
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// PublicKeys is the JWK Set that verifies this signer's tokens.
func (s *Signer) PublicKeys() jwk.Set {
	return jwk.Set{Keys: []jwk.Key{jwk.FromPublicKey(s.key.Public().(ed25519.PublicKey))}}
}

// KeyID is the kid of the signing key.
func (s *Signer) KeyID() string { return s.kid }
