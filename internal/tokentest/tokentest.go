// Package tokentest mints access tokens for tests: valid ones signed the way
// authsvc signs, and the forged and broken ones from ../shared/cases (T5–T11).
package tokentest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mlgate/mlgate/internal/jwk"
	"github.com/mlgate/mlgate/internal/token"
)

// Issuer signs tokens with its own Ed25519 key and serves that key.
type Issuer struct {
	Key      ed25519.PrivateKey
	Kid      string
	Name     string // iss
	Audience string
}

// NewIssuer returns an issuer with a fresh key and mlgate's default iss/aud.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Key: priv, Kid: jwk.Thumbprint(pub), Name: "mlgate-authsvc", Audience: "mlgate"}
}

// PublicKey implements token.KeyLookup for this issuer's one key.
func (i *Issuer) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if kid != i.Kid {
		return nil, fmt.Errorf("%w %q", token.ErrUnknownKey, kid)
	}
	return i.Key.Public().(ed25519.PublicKey), nil
}

// Claims returns the claims of a valid token for subject.
func (i *Issuer) Claims(subject string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": i.Name, "aud": []string{i.Audience}, "sub": subject, "sid": "session-" + subject,
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "test-" + subject,
		"scope": "predict models:read", "roles": []string{"user"},
	}
}

// Valid returns a valid token for subject.
func (i *Issuer) Valid(t testing.TB, subject string) string {
	return i.Sign(t, i.Claims(subject))
}

// Sign signs claims with the issuer's key and kid.
func (i *Issuer) Sign(t testing.TB, claims jwt.MapClaims) string {
	return signEdDSA(t, i.Key, i.Kid, claims)
}

func signEdDSA(t testing.TB, key ed25519.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Forgery is a token that must be refused, named by what is wrong with it.
type Forgery struct {
	Name  string
	Token string
}

// Forgeries returns every kind of bad token the cases list names (T5–T11) and
// a few more of the same kinds.
func (i *Issuer) Forgeries(t testing.TB) []Forgery {
	t.Helper()
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := i.Claims("user-1")
		change(c)
		return c
	}
	pub := i.Key.Public().(ed25519.PublicKey)
	_, otherKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := rawSegment(t, i.Claims("user-1"))
	hs256 := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, i.Claims("user-1"))
		tok.Header["kid"] = i.Kid
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return []Forgery{
		{"T5 alg none", rawSegment(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + payload + "."},
		{"T5 alg None", rawSegment(t, map[string]string{"alg": "None", "typ": "JWT"}) + "." + payload + "."},
		{"T5 alg none with kid", rawSegment(t, map[string]string{"alg": "none", "typ": "JWT", "kid": i.Kid}) + "." + payload + "."},
		{"T6 HS256 keyed with the public key bytes", hs256(pub)},
		{"T6 HS256 keyed with the JWK x value", hs256([]byte(jwk.FromPublicKey(pub).X))},
		{"T7 no exp", i.Sign(t, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"T8 expired two minutes ago", i.Sign(t, with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }))},
		{"T9 wrong aud", i.Sign(t, with(func(c jwt.MapClaims) { c["aud"] = []string{"someone-else"} }))},
		{"T9 no aud", i.Sign(t, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"T9 wrong iss", i.Sign(t, with(func(c jwt.MapClaims) { c["iss"] = "evil-issuer" }))},
		{"T9 no iss", i.Sign(t, with(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"T10 other key claiming our kid", signEdDSA(t, otherKey, i.Kid, i.Claims("user-1"))},
		{"unknown kid", signEdDSA(t, otherKey, jwk.Thumbprint(otherKey.Public().(ed25519.PublicKey)), i.Claims("user-1"))},
		{"no kid", signEdDSA(t, i.Key, "", i.Claims("user-1"))},
		{"no sub", i.Sign(t, with(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"no sid", i.Sign(t, with(func(c jwt.MapClaims) { delete(c, "sid") }))},
		{"issued in the future", i.Sign(t, with(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() }))},
		{"tampered payload", tamper(i.Valid(t, "user-1"))},
		{"T11 aGk=", "aGk="},
		{"T11 a.b", "a.b"},
		{"T11 a.b.c.d", "a.b.c.d"},
		{"T11 ..", ".."},
		{"T11 e30.e30.", "e30.e30."},
		{"T11 garbage segments", "!!!.???.***"},
		{"oversized", strings.Repeat("a", token.MaxTokenBytes+1)},
		{"crit header", i.signWithHeader(t, map[string]any{"crit": []string{"urn:x"}})},
		{"typ JWE", i.signWithHeader(t, map[string]any{"typ": "JWE"})},
		{"6 KB kid", i.signWithHeader(t, map[string]any{"kid": strings.Repeat("k", 6000)})},
		{"path traversal kid", i.signWithHeader(t, map[string]any{"kid": "../../etc/passwd"})},
		{"kid with a colon", i.signWithHeader(t, map[string]any{"kid": "evil: kid"})},
		{"non-canonical signature encoding", malleate(i.Valid(t, "user-1"))},
	}
}

// signWithHeader signs a valid token whose header has extra or replaced fields.
func (i *Issuer) signWithHeader(t testing.TB, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, i.Claims("user-1"))
	tok.Header["kid"] = i.Kid
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(i.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// malleate changes the unused low bits of the signature's last base64url
// character: the same signature bytes, spelled differently.
func malleate(tok string) string {
	last := tok[len(tok)-1]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	idx := strings.IndexByte(alphabet, last)
	// A 64-byte signature ends in a character carrying 2 bits of data and 4
	// padding bits; flipping the lowest padding bit keeps the data.
	return tok[:len(tok)-1] + string(alphabet[idx^1])
}

// rawSegment is the base64url JSON of v, as one JWT segment.
func rawSegment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// tamper swaps the payload of a signed token for one claiming another subject.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "user-1", "admin-0", 1)))
	return strings.Join(parts, ".")
}
