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

// refusals are the ways a token is refused, most specific first: the
// metrics label and the words the caller gets, in place of the JWT library's
// wording ("error while executing keyfunc").
var refusals = []struct {
	err     error
	outcome string
	reason  func(err error) string
}{
	{jwt.ErrTokenExpired, "expired", fixed("it has expired; get a new one with Refresh or log in again")},
	{ErrUnknownKey, "unknown_kid", func(err error) string {
		// From ErrUnknownKey on: the kid is the caller's and may hold ": ".
		msg, detail := err.Error(), innermost(err)
		if i := strings.Index(msg, ErrUnknownKey.Error()); i >= 0 {
			detail = msg[i:]
		}
		return "signed with a key this service does not trust (" + detail + "); was it issued by this deployment's authsvc?"
	}},
	{jwt.ErrTokenSignatureInvalid, "bad_signature", fixed("its signature does not verify")},
	{jwt.ErrTokenMalformed, "malformed", fixed("not a well-formed JWT (want three base64url parts separated by dots)")},
	{jwt.ErrTokenInvalidIssuer, "wrong_issuer_or_audience", fixed("wrong issuer (iss)")},
	{jwt.ErrTokenInvalidAudience, "wrong_issuer_or_audience", fixed("wrong audience (aud)")},
	{jwt.ErrTokenNotValidYet, "invalid", fixed("not valid yet (nbf or iat is in the future)")},
	{jwt.ErrTokenUsedBeforeIssued, "invalid", fixed("not valid yet (nbf or iat is in the future)")},
	{jwt.ErrTokenRequiredClaimMissing, "invalid", func(err error) string {
		return "a required claim is missing (" + innermost(err) + ")"
	}},
}

func fixed(reason string) func(error) string { return func(error) string { return reason } }

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
	}
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r.outcome
		}
	}
	return "invalid"
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

// RefreshTokenPrefix starts every mlgate refresh token, so that one sent
// where an access token belongs (or the reverse) is recognised and named.
const RefreshTokenPrefix = "mlgrt_"

// invalidError is a refused token: Error gives the caller a reason it can act
// on; Unwrap keeps ErrInvalid and the library's error for errors.Is.
type invalidError struct {
	reason string
	cause  error
}

func (e *invalidError) Error() string   { return ErrInvalid.Error() + ": " + e.reason }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.cause} }

// reason says why raw was refused in words a caller can act on.
func reason(raw string, err error) string {
	if strings.HasPrefix(raw, RefreshTokenPrefix) {
		return "this is a refresh token; send the access_token from Login or Refresh as the bearer token"
	}
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r.reason(err)
		}
	}
	return innermost(err)
}

// innermost returns the last part of a chain of "context: cause" messages.
func innermost(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
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
		return Principal{}, &invalidError{reason: reason(raw, err), cause: err}
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
