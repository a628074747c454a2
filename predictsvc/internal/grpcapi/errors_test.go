package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
)

func TestToStatus(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"validation", &prediction.ValidationError{Field: "instances", Reason: "must hold at least one instance"}, codes.InvalidArgument, "instances: must hold at least one instance"},
		{"unknown model", fmt.Errorf("%w %q", model.ErrNotFound, "tulips"), codes.NotFound, `unknown model "tulips" (ListModels names the models)`},
		{"overflow", fmt.Errorf("row 0: %w", model.ErrOutOfRange), codes.InvalidArgument, "instances: row 0: feature values too large for the model"},
		{"batch too large", fmt.Errorf("%w: 2000 instances", prediction.ErrBatchTooLarge), codes.ResourceExhausted, "instances: batch too large: 2000 instances"},
		{"scope", fmt.Errorf("%w: model m needs s", prediction.ErrScopeMissing), codes.PermissionDenied, "access token lacks the model's scope: model m needs s"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "deadline exceeded before the model ran"},
		{"canceled", context.Canceled, codes.Canceled, "request canceled"},
		{"bug", errors.New("gonnx: tensor shape mismatch"), codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := status.FromError(s.toStatus(context.Background(), "op", tt.err))
			if st.Code() != tt.code || st.Message() != tt.message {
				t.Fatalf("toStatus = %s %q, want %s %q", st.Code(), st.Message(), tt.code, tt.message)
			}
		})
	}
}
