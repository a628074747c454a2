package grpcapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/authsvc/internal/throttle"
)

// retryLater is RESOURCE_EXHAUSTED with the delay in a google.rpc.RetryInfo
// detail, which gRPC clients and proxies understand.
func retryLater(msg string, after time.Duration) error {
	st := status.New(codes.ResourceExhausted, msg)
	if withDetails, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after.Round(time.Second))}); err == nil {
		st = withDetails
	}
	return st.Err()
}

// toStatus is authsvc's one mapping from errors to gRPC status codes.
// Anything unrecognised is a bug: INTERNAL with a generic message, the detail
// logged (the error never holds a password).
func (s *Server) toStatus(ctx context.Context, op string, err error) error {
	var invalid *account.ValidationError
	var throttled *throttle.ThrottledError
	switch {
	case errors.As(err, &throttled):
		return retryLater(err.Error(), throttled.RetryAfter)
	case errors.Is(err, password.ErrBusy):
		return retryLater("too many password checks in progress; retry shortly", time.Second)
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
