// Package grpcapi is authsvc's gRPC surface: it turns requests into calls on
// the account domain and domain errors into status codes (in errors.go only).
package grpcapi

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	"github.com/mlgate/mlgate/internal/jwk"
	"github.com/mlgate/mlgate/internal/token"
)

// Accounts is the domain the handlers call.
type Accounts interface {
	Register(ctx context.Context, email, password string) (userID string, err error)
	Login(ctx context.Context, email, password string) (account.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (account.Tokens, error)
	Logout(ctx context.Context, refreshToken string) error
	LogoutAll(ctx context.Context, caller token.Principal) (int, error)
	ChangePassword(ctx context.Context, caller token.Principal, oldPassword, newPassword string) (int, error)
	Revocations(ctx context.Context, cursor string) ([]account.Revocation, string, bool, error)

	ListUsers(ctx context.Context, caller token.Principal, pageSize int, pageToken string) ([]store.User, string, error)
	DisableUser(ctx context.Context, caller token.Principal, userID string) (int, error)
	EnableUser(ctx context.Context, caller token.Principal, userID string) (store.User, error)
	SetRoles(ctx context.Context, caller token.Principal, userID string, roles []string) (store.User, error)
	AuditLog(ctx context.Context, caller token.Principal, pageSize int, pageToken, userID string) ([]store.AuditEvent, string, error)
}

// KeySet publishes the public signing keys.
type KeySet interface {
	PublicKeys() jwk.Set
}

// PublicMethods need no access token; every other AuthService and
// AdminService method does.
var PublicMethods = []string{
	authv1.AuthService_Register_FullMethodName,
	authv1.AuthService_Login_FullMethodName,
	authv1.AuthService_Refresh_FullMethodName,
	authv1.AuthService_Logout_FullMethodName,
	authv1.AuthService_GetJwks_FullMethodName,
	authv1.AuthService_ListRevocations_FullMethodName,
}

// Server implements auth.v1.AuthService and auth.v1.AdminService.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	authv1.UnimplementedAdminServiceServer
	accounts Accounts
	keys     KeySet
	log      *slog.Logger
}

// NewServer returns the implementation of both services.
func NewServer(accounts Accounts, keys KeySet, log *slog.Logger) *Server {
	return &Server{accounts: accounts, keys: keys, log: log}
}

// withClient records the caller's address for the audit log.
func withClient(ctx context.Context) context.Context {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return account.WithClientAddr(ctx, p.Addr.String())
	}
	return ctx
}

// caller is the principal the auth interceptor verified.
func caller(ctx context.Context) token.Principal {
	p, _ := token.FromContext(ctx)
	return p
}

// Register creates an account.
func (s *Server) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	id, err := s.accounts.Register(withClient(ctx), req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, s.toStatus(ctx, "register", err)
	}
	return &authv1.RegisterResponse{UserId: id}, nil
}

// Login checks credentials and starts a session.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	t, err := s.accounts.Login(withClient(ctx), req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, s.toStatus(ctx, "login", err)
	}
	return &authv1.LoginResponse{
		AccessToken: t.Access, TokenType: "Bearer", ExpireTime: timestamppb.New(t.AccessExpires),
		RefreshToken: t.Refresh, RefreshExpireTime: timestamppb.New(t.RefreshExpires),
	}, nil
}

// Refresh exchanges a refresh token.
func (s *Server) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	t, err := s.accounts.Refresh(withClient(ctx), req.GetRefreshToken())
	if err != nil {
		return nil, s.toStatus(ctx, "refresh", err)
	}
	return &authv1.RefreshResponse{
		AccessToken: t.Access, TokenType: "Bearer", ExpireTime: timestamppb.New(t.AccessExpires),
		RefreshToken: t.Refresh, RefreshExpireTime: timestamppb.New(t.RefreshExpires),
	}, nil
}

// Logout ends a session.
func (s *Server) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	if err := s.accounts.Logout(withClient(ctx), req.GetRefreshToken()); err != nil {
		return nil, s.toStatus(ctx, "logout", err)
	}
	return &authv1.LogoutResponse{}, nil
}

// LogoutAll ends all the caller's sessions.
func (s *Server) LogoutAll(ctx context.Context, _ *authv1.LogoutAllRequest) (*authv1.LogoutAllResponse, error) {
	n, err := s.accounts.LogoutAll(withClient(ctx), caller(ctx))
	if err != nil {
		return nil, s.toStatus(ctx, "logout all", err)
	}
	return &authv1.LogoutAllResponse{SessionsEnded: int32(n)}, nil
}

// ChangePassword sets a new password and ends the caller's other sessions.
func (s *Server) ChangePassword(ctx context.Context, req *authv1.ChangePasswordRequest) (*authv1.ChangePasswordResponse, error) {
	n, err := s.accounts.ChangePassword(withClient(ctx), caller(ctx), req.GetOldPassword(), req.GetNewPassword())
	if err != nil {
		return nil, s.toStatus(ctx, "change password", err)
	}
	return &authv1.ChangePasswordResponse{OtherSessionsEnded: int32(n)}, nil
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

// ListRevocations is the revocation feed.
func (s *Server) ListRevocations(ctx context.Context, req *authv1.ListRevocationsRequest) (*authv1.ListRevocationsResponse, error) {
	revs, cursor, more, err := s.accounts.Revocations(ctx, req.GetCursor())
	if err != nil {
		return nil, s.toStatus(ctx, "list revocations", err)
	}
	resp := &authv1.ListRevocationsResponse{Cursor: cursor, More: more, Revocations: make([]*authv1.Revocation, len(revs))}
	for i, r := range revs {
		resp.Revocations[i] = &authv1.Revocation{SessionId: r.SessionID, RevokeTime: timestamppb.New(r.RevokedAt), ForgetTime: timestamppb.New(r.ForgetAt)}
	}
	return resp, nil
}

// ListUsers lists accounts (admin).
func (s *Server) ListUsers(ctx context.Context, req *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	users, next, err := s.accounts.ListUsers(ctx, caller(ctx), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.toStatus(ctx, "list users", err)
	}
	resp := &authv1.ListUsersResponse{NextPageToken: next, Users: make([]*authv1.User, len(users))}
	for i, u := range users {
		resp.Users[i] = toUser(u)
	}
	return resp, nil
}

// DisableUser disables an account (admin).
func (s *Server) DisableUser(ctx context.Context, req *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	n, err := s.accounts.DisableUser(withClient(ctx), caller(ctx), req.GetUserId())
	if err != nil {
		return nil, s.toStatus(ctx, "disable user", err)
	}
	return &authv1.DisableUserResponse{SessionsEnded: int32(n)}, nil
}

// EnableUser re-enables an account (admin).
func (s *Server) EnableUser(ctx context.Context, req *authv1.EnableUserRequest) (*authv1.EnableUserResponse, error) {
	u, err := s.accounts.EnableUser(withClient(ctx), caller(ctx), req.GetUserId())
	if err != nil {
		return nil, s.toStatus(ctx, "enable user", err)
	}
	return &authv1.EnableUserResponse{User: toUser(u)}, nil
}

// SetUserRoles replaces an account's roles (admin).
func (s *Server) SetUserRoles(ctx context.Context, req *authv1.SetUserRolesRequest) (*authv1.SetUserRolesResponse, error) {
	u, err := s.accounts.SetRoles(withClient(ctx), caller(ctx), req.GetUserId(), req.GetRoles())
	if err != nil {
		return nil, s.toStatus(ctx, "set roles", err)
	}
	return &authv1.SetUserRolesResponse{User: toUser(u)}, nil
}

// ListAuditEvents lists the audit log (admin).
func (s *Server) ListAuditEvents(ctx context.Context, req *authv1.ListAuditEventsRequest) (*authv1.ListAuditEventsResponse, error) {
	events, next, err := s.accounts.AuditLog(ctx, caller(ctx), int(req.GetPageSize()), req.GetPageToken(), req.GetUserId())
	if err != nil {
		return nil, s.toStatus(ctx, "list audit events", err)
	}
	resp := &authv1.ListAuditEventsResponse{NextPageToken: next, Events: make([]*authv1.AuditEvent, len(events))}
	for i, e := range events {
		resp.Events[i] = &authv1.AuditEvent{
			Time: timestamppb.New(e.At), Kind: e.Kind, UserId: e.UserID, Email: e.Email,
			ClientAddress: e.ClientAddr, Outcome: e.Outcome, Detail: e.Detail,
		}
	}
	return resp, nil
}

func toUser(u store.User) *authv1.User {
	out := &authv1.User{UserId: u.ID, Email: u.Email, Roles: u.Roles, CreateTime: timestamppb.New(u.CreatedAt)}
	if u.Disabled() {
		out.DisableTime = timestamppb.New(u.DisabledAt)
	}
	return out
}
