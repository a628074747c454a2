package grpcserver

import (
	"context"
	"errors"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/token"
)

// TokenVerifier checks a raw access token.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (token.Principal, error)
}

const wantBearer = `want metadata "authorization: Bearer <access_token>"`

// BearerAuth authenticates a call by the access token in its authorization
// metadata and puts the verified principal in the handler's context. Every
// failure is UNAUTHENTICATED; the message says what was wrong, never the token.
// observe, if set, is told each verification's outcome (for metrics).
func BearerAuth(v TokenVerifier, observe func(outcome string)) auth.AuthFunc {
	if observe == nil {
		observe = func(string) {}
	}
	return func(ctx context.Context) (context.Context, error) {
		values := metadata.ValueFromIncomingContext(ctx, "authorization")
		switch {
		case len(values) == 0:
			observe("missing")
			return nil, status.Error(codes.Unauthenticated, "missing access token: "+wantBearer)
		case len(values) > 1:
			observe("malformed_header")
			return nil, status.Error(codes.Unauthenticated, "more than one authorization value: "+wantBearer)
		}
		raw, ok := bearerToken(values[0])
		if !ok {
			observe("malformed_header")
			return nil, status.Error(codes.Unauthenticated, "malformed authorization metadata: "+wantBearer)
		}
		p, err := v.Verify(ctx, raw)
		observe(token.Outcome(err))
		switch {
		case errors.Is(err, token.ErrKeysUnavailable):
			return nil, status.Error(codes.Unavailable, "cannot verify tokens yet: signing keys not loaded; retry shortly")
		case errors.Is(err, token.ErrRevocationUnknown):
			return nil, status.Error(codes.Unavailable, "cannot verify tokens now: the revocation list is out of date; retry shortly")
		}
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		return token.NewContext(ctx, p), nil
	}
}

// bearerToken returns the token of an "authorization: Bearer <token>" value
// (the scheme matched case-insensitively, as auth.AuthFromMD does) and
// whether the value had that form with a token free of blanks.
func bearerToken(value string) (string, bool) {
	scheme, raw, found := strings.Cut(value, " ")
	if !found || !strings.EqualFold(scheme, "bearer") || raw == "" ||
		strings.IndexByte(raw, ' ') >= 0 || strings.IndexByte(raw, '\t') >= 0 {
		return "", false
	}
	return raw, true
}
