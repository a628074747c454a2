package grpcserver

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/token"
)

// requireScopes refuses a call whose verified token lacks the scope its
// method needs: PERMISSION_DENIED, since the caller is known but not allowed.
func requireScopes(required map[string]string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		scope, listed := required[info.FullMethod]
		if !listed {
			return nil, status.Error(codes.PermissionDenied, "method "+info.FullMethod+" is not open to any scope")
		}
		if scope != "" {
			p, ok := token.FromContext(ctx)
			if !ok || !p.HasScope(scope) {
				return nil, status.Error(codes.PermissionDenied, "access token lacks the scope "+scope+" that "+info.FullMethod+" needs")
			}
		}
		return handler(ctx, req)
	}
}
