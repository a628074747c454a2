package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/internal/tokentest"
)

// BenchmarkBearerAuth is the server-side cost of authenticating one call
// whose token was seen before: metadata parsing, the cache lookup, the
// revocation check and the principal in the context.
func BenchmarkBearerAuth(b *testing.B) {
	iss := tokentest.NewIssuer(b)
	verifier, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience, Leeway: 30 * time.Second}, iss, nil)
	if err != nil {
		b.Fatal(err)
	}
	authenticate := grpcserver.BearerAuth(verifier, func(string) {})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+iss.Valid(b, "user-1")))
	b.ReportAllocs()
	for b.Loop() {
		out, err := authenticate(ctx)
		if err != nil || out == nil {
			b.Fatal(err)
		}
	}
}
