package grpcapi

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
)

// toStatus is predictsvc's one mapping from errors to gRPC status codes.
// Anything unrecognised is a bug: INTERNAL with a generic message, the detail
// logged.
func (s *Server) toStatus(ctx context.Context, op string, err error) error {
	var invalid *prediction.ValidationError
	switch {
	case errors.As(err, &invalid):
		st := status.New(codes.InvalidArgument, invalid.Error())
		if withDetails, detailErr := st.WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: invalid.Field, Description: invalid.Reason}},
		}); detailErr == nil {
			st = withDetails
		}
		return st.Err()
	case errors.Is(err, model.ErrOutOfRange):
		return status.Error(codes.InvalidArgument, "instances: "+err.Error())
	case errors.Is(err, model.ErrNotFound):
		return status.Error(codes.NotFound, err.Error()+" (ListModels names the models)")
	case errors.Is(err, prediction.ErrScopeMissing):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, prediction.ErrBatchTooLarge):
		return status.Error(codes.ResourceExhausted, "instances: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded before the model ran")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	default:
		s.log.ErrorContext(ctx, op+": unexpected error", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
}
