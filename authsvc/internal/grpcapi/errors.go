package grpcapi

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// toStatus is authsvc's one mapping from errors to gRPC status codes.
// Anything unrecognised is a bug: INTERNAL with a generic message, the detail
// logged (the error never holds a password).
func (s *Server) toStatus(ctx context.Context, op string, err error) error {
	var invalid *account.ValidationError
	switch {
	case errors.As(err, &invalid):
		st := status.New(codes.InvalidArgument, invalid.Error())
		if withDetails, detailErr := st.WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: invalid.Field, Description: invalid.Reason}},
		}); detailErr == nil {
			st = withDetails
		}
		return st.Err()
	case errors.Is(err, store.ErrEmailTaken):
		return status.Error(codes.AlreadyExists, "email: already registered")
	case errors.Is(err, account.ErrBadCredentials), errors.Is(err, account.ErrInvalidRefreshToken), errors.Is(err, account.ErrWrongPassword):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, account.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, account.ErrUnknownUser):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrStoreUnavailable):
		s.log.WarnContext(ctx, op+": store unavailable", "err", err)
		return status.Error(codes.Unavailable, "user store unavailable; retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	default:
		s.log.ErrorContext(ctx, op+": unexpected error", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
}
