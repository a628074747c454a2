// Package token defines mlgate's access-token claims and verifies tokens.
// authsvc signs with these claims; predictsvc (and anything else holding only
// public keys) verifies them.
package token

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithm is the only signing algorithm mlgate issues or accepts.
const Algorithm = "EdDSA"

// MaxLeeway bounds the clock skew a verifier may tolerate.
const MaxLeeway = 60 * time.Second

// maxKidBytes bounds the kid a token may name (mlgate's are 43 bytes), so
// that messages and logs quoting it stay small.
const maxKidBytes = 128

// MaxTokenBytes bounds the tokens a verifier will parse. mlgate's tokens are
// under 1 KiB; anything far larger is rejected before any decoding work.
const MaxTokenBytes = 8 << 10

// Claims are the claims of an mlgate access token.
type Claims struct {
	jwt.RegisteredClaims
	// SessionID (sid) names the login session; ending it revokes the token.
	SessionID string `json:"sid"`
	// Scope is space-delimited (RFC 8693 style): what the token may do.
	Scope string   `json:"scope,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// Principal is the verified caller a handler sees.
type Principal struct {
	// Subject is the user id (never the email).
	Subject   string
	SessionID string
	TokenID   string
	ExpiresAt time.Time
	Scopes    []string
	Roles     []string
}

// HasScope reports whether the token grants scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// HasRole reports whether the token carries role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal a verified token put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// ErrInvalid wraps every reason a token is refused, so callers map it to one
// status without caring which check failed.
var ErrInvalid = errors.New("invalid access token")

// ErrUnknownKey is what a KeyLookup returns for a kid it does not know.
var ErrUnknownKey = errors.New("unknown signing key")

// ErrKeysUnavailable is what a KeyLookup returns before it has any keys at
// all: the token may be fine, the verifier is not ready.
var ErrKeysUnavailable = errors.New("signing keys not loaded yet")

// ErrRevocationUnknown: the verifier cannot tell whether the token's session
// was ended (the revocation feed is stale), so it refuses for now.
var ErrRevocationUnknown = errors.New("revocation status unknown")

// RevocationList tells whether a session was ended. It returns
// ErrRevocationUnknown when it cannot say.
type RevocationList interface {
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
}

var errSessionEnded = errors.New("session has ended (logged out or revoked)")

// Outcome names a Verify result for metrics: "ok", or why the token was
// refused.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrKeysUnavailable):
		return "keys_unavailable"
	case errors.Is(err, ErrRevocationUnknown):
		return "revocation_unknown"
	case errors.Is(err, errSessionEnded):
		return "revoked"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_kid"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad_signature"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong_issuer_or_audience"
	default:
		return "invalid"
	}
}

// KeyLookup finds the public key for a kid.
type KeyLookup interface {
	PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// VerifierConfig says which tokens are acceptable.
type VerifierConfig struct {
	Issuer   string
	Audience string
	Leeway   time.Duration
}

// Verifier checks signature, algorithm, kid, issuer, audience, lifetime and,
// when it has a revocation list, that the session is still active.
type Verifier struct {
	parser  *jwt.Parser
	keys    KeyLookup
	revoked RevocationList
	cache   *verifiedCache
}

// NewVerifier builds a verifier; it refuses a config that would accept tokens
// from anyone or for too long past expiry. revoked may be nil: tokens then
// live until they expire.
func NewVerifier(cfg VerifierConfig, keys KeyLookup, revoked RevocationList) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("token verifier: issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("token verifier: audience is required")
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("token verifier: leeway must be between 0 and %s, got %s", MaxLeeway, cfg.Leeway)
	case keys == nil:
		return nil, errors.New("token verifier: no key source")
	}
	return &Verifier{
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Algorithm}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			// Standard base64url only: one token, one spelling.
			jwt.WithStrictDecoding(),
		),
		keys:    keys,
		revoked: revoked,
		cache:   newVerifiedCache(cacheEntries),
	}, nil
}

// cacheEntries bounds the verified-token cache (about 300 bytes an entry).
const cacheEntries = 10000

// Verify returns the principal of a valid token. Every failure wraps ErrInvalid
// with a reason that is safe to show the caller (it never echoes the token),
// except ErrKeysUnavailable and ErrRevocationUnknown: then no verdict on the
// token is possible yet.
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, fmt.Errorf("%w: empty token", ErrInvalid)
	}
	if len(raw) > MaxTokenBytes {
		return Principal{}, fmt.Errorf("%w: token is %d bytes, the limit is %d", ErrInvalid, len(raw), MaxTokenBytes)
	}
	// A token seen before skips the signature check (the cache keeps it no
	// longer than its exp); the session is checked on every call, so a
	// revocation still takes effect at once.
	key := cacheKey(raw)
	p, cached := v.cache.get(key, time.Now())
	if !cached {
		var err error
		if p, err = v.verifySignature(ctx, raw); err != nil {
			return Principal{}, err
		}
		v.cache.put(key, p)
	}
	if v.revoked != nil {
		revoked, err := v.revoked.IsRevoked(ctx, p.SessionID)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: %w", ErrRevocationUnknown, err)
		}
		if revoked {
			return Principal{}, fmt.Errorf("%w: %w", ErrInvalid, errSessionEnded)
		}
	}
	return p, nil
}

// verifySignature checks everything about the token itself.
func (v *Verifier) verifySignature(ctx context.Context, raw string) (Principal, error) {
	var claims Claims
	_, err := v.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, ok := t.Header["kid"].(string)
		switch {
		case !ok || kid == "":
			return nil, errors.New("token header has no kid")
		case len(kid) > maxKidBytes:
			return nil, fmt.Errorf("kid is %d bytes, the limit is %d", len(kid), maxKidBytes)
		}
		// RFC 7515 §4.1.11: a token naming extensions we do not implement
		// must be refused.
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New(`token header has "crit"; no extensions are supported`)
		}
		if typ, ok := t.Header["typ"]; ok && typ != "JWT" && typ != "at+jwt" {
			return nil, errors.New(`token header typ must be "JWT"`)
		}
		return v.keys.PublicKey(ctx, kid)
	})
	if errors.Is(err, ErrKeysUnavailable) {
		return Principal{}, ErrKeysUnavailable
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch {
	case claims.Subject == "":
		return Principal{}, fmt.Errorf("%w: token has no subject", ErrInvalid)
	case claims.SessionID == "":
		return Principal{}, fmt.Errorf("%w: token has no session id", ErrInvalid)
	}
	p := Principal{
		Subject: claims.Subject, SessionID: claims.SessionID, TokenID: claims.ID,
		Scopes: strings.Fields(claims.Scope), Roles: claims.Roles,
	}
	if claims.ExpiresAt != nil {
		p.ExpiresAt = claims.ExpiresAt.Time
	}
	return p, nil
}
