// Package grpcapi is authsvc's gRPC surface: it turns requests into calls on the
// account domain and domain errors into status codes (in errors.go only).
package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	"github.com/mlgate/mlgate/internal/jwk"
)

// Accounts registers users and logs them in.
type Accounts interface {
	Register(ctx context.Context, email, password string) (userID string, err error)
	Login(ctx context.Context, email, password string) (token string, expiresAt time.Time, err error)
}

// KeySet publishes the public signing keys.
type KeySet interface {
	PublicKeys() jwk.Set
}

// Server implements auth.v1.AuthService.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	accounts Accounts
	keys     KeySet
	log      *slog.Logger
}

// NewServer returns the AuthService implementation.
func NewServer(accounts Accounts, keys KeySet, log *slog.Logger) *Server {
	return &Server{accounts: accounts, keys: keys, log: log}
}

// Register creates an account.
func (s *Server) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	id, err := s.accounts.Register(ctx, req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, s.toStatus(ctx, "register", err)
	}
	return &authv1.RegisterResponse{UserId: id}, nil
}

// Login checks credentials and returns an access token.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	tok, exp, err := s.accounts.Login(ctx, req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, s.toStatus(ctx, "login", err)
	}
	return &authv1.LoginResponse{AccessToken: tok, TokenType: "Bearer", ExpireTime: timestamppb.New(exp)}, nil
}

// GetJwks returns the public keys as a JWK Set.
func (s *Server) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	set := s.keys.PublicKeys()
	resp := &authv1.GetJwksResponse{Keys: make([]*authv1.JsonWebKey, 0, len(set.Keys))}
	for _, k := range set.Keys {
		resp.Keys = append(resp.Keys, &authv1.JsonWebKey{Kty: k.Kty, Crv: k.Crv, X: k.X, Kid: k.Kid, Use: k.Use, Alg: k.Alg})
	}
	return resp, nil
}
