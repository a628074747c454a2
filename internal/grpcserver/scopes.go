package grpcserver

import (
	"context"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/token"
)

// withScopes adds the scope check to authenticate, in the same pass (one
// interceptor fewer on every call): a call whose verified token lacks the
// scope its method needs is PERMISSION_DENIED, since the caller is known but
// not allowed; a protected method missing from required is refused to all.
func withScopes(authenticate auth.AuthFunc, required map[string]string) auth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		ctx, err := authenticate(ctx)
		if err != nil {
			return nil, err
		}
		method, _ := grpc.Method(ctx)
		scope, listed := required[method]
		if !listed {
			return nil, status.Error(codes.PermissionDenied, "method "+method+" is not open to any scope")
		}
		if scope != "" {
			if p, ok := token.FromContext(ctx); !ok || !p.HasScope(scope) {
				return nil, status.Error(codes.PermissionDenied, "access token lacks the scope "+scope+" that "+method+" needs")
			}
		}
		return ctx, nil
	}
}
