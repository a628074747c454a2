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

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/store"
)

func TestToStatus(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"validation", &account.ValidationError{Field: "email", Reason: "is required"}, codes.InvalidArgument, "email: is required"},
		{"email taken", fmt.Errorf("store: %w", store.ErrEmailTaken), codes.AlreadyExists, "email: already registered"},
		{"bad credentials", account.ErrBadCredentials, codes.Unauthenticated, "invalid email or password"},
		{"bad refresh token", account.ErrInvalidRefreshToken, codes.Unauthenticated, "refresh token is invalid, spent or expired; log in again"},
		{"wrong old password", account.ErrWrongPassword, codes.Unauthenticated, "old_password: does not match the current password"},
		{"not an admin", account.ErrPermissionDenied, codes.PermissionDenied, "this needs the admin role"},
		{"unknown user", account.ErrUnknownUser, codes.NotFound, "user_id: no such user"},
		{"store down", fmt.Errorf("%w: connection refused", store.ErrStoreUnavailable), codes.Unavailable, "user store unavailable; retry later"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "deadline exceeded"},
		{"canceled", context.Canceled, codes.Canceled, "request canceled"},
		{"bug", errors.New("broken invariant: secret detail"), codes.Internal, "internal error"},
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
