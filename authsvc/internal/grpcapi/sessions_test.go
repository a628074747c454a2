package grpcapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/concurrently"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	"github.com/mlgate/mlgate/internal/grpctest"
)

func (f *fixture) signup(t *testing.T, email, pw string) *authv1.LoginResponse {
	t.Helper()
	if _, err := f.register(email, pw); err != nil {
		t.Fatal(err)
	}
	login, err := f.login(email, pw)
	if err != nil {
		t.Fatal(err)
	}
	return login
}

func (f *fixture) refresh(tok string) (*authv1.RefreshResponse, error) {
	return f.client.Refresh(context.Background(), &authv1.RefreshRequest{RefreshToken: tok})
}

// R1 -> R2; R1 again is refused and ends the session, so R2 dies too.
func TestRefreshRotationAndReuseDetection(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	login := f.signup(t, "ada@example.com", "a fine password")
	if !strings.HasPrefix(login.GetRefreshToken(), "mlgrt_") || len(login.GetRefreshToken()) < 6+43 {
		t.Fatalf("refresh token %q is not 256 bits with the mlgrt_ prefix", login.GetRefreshToken())
	}
	if !login.GetRefreshExpireTime().AsTime().After(login.GetExpireTime().AsTime()) {
		t.Fatal("refresh token expires before the access token")
	}
	r2, err := f.refresh(login.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	first, second := parseUnverified(t, login.GetAccessToken()), parseUnverified(t, r2.GetAccessToken())
	if first.Subject != second.Subject || r2.GetTokenType() != "Bearer" || r2.GetRefreshToken() == login.GetRefreshToken() {
		t.Fatalf("refresh gave sub %s (want %s), type %s", second.Subject, first.Subject, r2.GetTokenType())
	}
	_, err = f.refresh(login.GetRefreshToken())
	grpctest.WantCode(t, err, codes.Unauthenticated)
	_, err = f.refresh(r2.GetRefreshToken())
	grpctest.WantCode(t, err, codes.Unauthenticated)

	events, err := f.store.ListAudit(context.Background(), 0, 50, first.Subject)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if !strings.Contains(strings.Join(kinds, ","), "refresh_reuse") {
		t.Fatalf("audit log lacks the reuse: %v", kinds)
	}
}

func TestRefreshRejectsBadInput(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	_, err := f.refresh("")
	grpctest.WantCode(t, err, codes.InvalidArgument)
	_, err = f.refresh(strings.Repeat("x", 10000))
	grpctest.WantCode(t, err, codes.InvalidArgument)
	_, err = f.refresh("mlgrt_never-issued")
	grpctest.WantCode(t, err, codes.Unauthenticated)
	// The access token where the refresh token belongs: named as such.
	login := f.signup(t, "ada@example.com", "a fine password")
	_, err = f.refresh(login.GetAccessToken())
	grpctest.WantCode(t, err, codes.InvalidArgument)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "is an access token") {
		t.Errorf("access token sent to Refresh: message %q does not say so", msg)
	}
}

// Ten concurrent refreshes of one token: exactly one succeeds.
func TestConcurrentRefreshes(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	login := f.signup(t, "ada@example.com", "a fine password")
	const n = 10
	codesSeen := make([]codes.Code, n)
	concurrently.Run(n, func(i int) {
		_, err := f.refresh(login.GetRefreshToken())
		codesSeen[i] = status.Code(err)
	})
	ok := 0
	for _, c := range codesSeen {
		switch c {
		case codes.OK:
			ok++
		case codes.Unauthenticated:
		default:
			t.Errorf("refresh answered %s", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent refreshes succeeded (%v), want exactly 1", ok, n, codesSeen)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	login := f.signup(t, "ada@example.com", "a fine password")
	for range 2 { // idempotent
		if _, err := f.client.Logout(context.Background(), &authv1.LogoutRequest{RefreshToken: login.GetRefreshToken()}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.refresh(login.GetRefreshToken())
	grpctest.WantCode(t, err, codes.Unauthenticated)
	// Row T13 at authsvc itself: the ended session's access token is refused.
	_, err = f.client.LogoutAll(grpctest.Bearer(context.Background(), login.GetAccessToken()), &authv1.LogoutAllRequest{})
	grpctest.WantCode(t, err, codes.Unauthenticated)
	if _, err := f.client.Logout(context.Background(), &authv1.LogoutRequest{RefreshToken: "mlgrt_unknown"}); err != nil {
		t.Fatalf("logout of an unknown token: %v (RFC 7009 says OK)", err)
	}
}

func TestLogoutAllAndChangePassword(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	a := f.signup(t, "ada@example.com", "old password 1")
	b, err := f.login("ada@example.com", "old password 1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.client.ChangePassword(context.Background(), &authv1.ChangePasswordRequest{OldPassword: "old password 1", NewPassword: "new password 2"})
	grpctest.WantCode(t, err, codes.Unauthenticated) // no token
	authedA := grpctest.Bearer(context.Background(), a.GetAccessToken())
	_, err = f.client.ChangePassword(authedA, &authv1.ChangePasswordRequest{OldPassword: "wrong", NewPassword: "new password 2"})
	grpctest.WantCode(t, err, codes.Unauthenticated)
	_, err = f.client.ChangePassword(authedA, &authv1.ChangePasswordRequest{OldPassword: "old password 1", NewPassword: "short"})
	grpctest.WantCode(t, err, codes.InvalidArgument)
	resp, err := f.client.ChangePassword(authedA, &authv1.ChangePasswordRequest{OldPassword: "old password 1", NewPassword: "new password 2"})
	if err != nil || resp.GetOtherSessionsEnded() != 1 {
		t.Fatalf("ChangePassword = %v, %v; want 1 other session ended", resp, err)
	}
	_, err = f.refresh(b.GetRefreshToken())
	grpctest.WantCode(t, err, codes.Unauthenticated)
	a2, err := f.refresh(a.GetRefreshToken())
	if err != nil {
		t.Fatalf("the caller's own session should survive: %v", err)
	}
	_, err = f.login("ada@example.com", "old password 1")
	grpctest.WantCode(t, err, codes.Unauthenticated)
	if _, err := f.login("ada@example.com", "new password 2"); err != nil {
		t.Fatal(err)
	}
	all, err := f.client.LogoutAll(grpctest.Bearer(context.Background(), a2.GetAccessToken()), &authv1.LogoutAllRequest{})
	if err != nil || all.GetSessionsEnded() != 2 {
		t.Fatalf("LogoutAll = %v, %v; want 2 sessions ended", all, err)
	}
	_, err = f.refresh(a2.GetRefreshToken())
	grpctest.WantCode(t, err, codes.Unauthenticated)
}

func TestRevocationFeed(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	login := f.signup(t, "ada@example.com", "a fine password")
	first, err := f.client.ListRevocations(context.Background(), &authv1.ListRevocationsRequest{})
	if err != nil || len(first.GetRevocations()) != 0 {
		t.Fatalf("feed before any logout = %v, %v", first, err)
	}
	if _, err := f.client.Logout(context.Background(), &authv1.LogoutRequest{RefreshToken: login.GetRefreshToken()}); err != nil {
		t.Fatal(err)
	}
	next, err := f.client.ListRevocations(context.Background(), &authv1.ListRevocationsRequest{Cursor: first.GetCursor()})
	if err != nil || len(next.GetRevocations()) != 1 {
		t.Fatalf("feed after logout = %v, %v", next, err)
	}
	r := next.GetRevocations()[0]
	if r.GetSessionId() != parseUnverified(t, login.GetAccessToken()).SessionID || !r.GetForgetTime().AsTime().After(login.GetExpireTime().AsTime()) {
		t.Fatalf("revocation = %v; want the login's sid, forgotten after its token expires", r)
	}
	_, err = f.client.ListRevocations(context.Background(), &authv1.ListRevocationsRequest{Cursor: "not-a-cursor"})
	grpctest.WantCode(t, err, codes.InvalidArgument)
}

func TestAdminService(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	admin := f.signup(t, "admin@example.com", "admin password")
	victim := f.signup(t, "victim@example.com", "victim password")
	ctx := context.Background()
	asUser := grpctest.Bearer(ctx, victim.GetAccessToken())
	_, err := f.admin.ListUsers(ctx, &authv1.ListUsersRequest{})
	grpctest.WantCode(t, err, codes.Unauthenticated)
	_, err = f.admin.ListUsers(asUser, &authv1.ListUsersRequest{})
	grpctest.WantCode(t, err, codes.PermissionDenied)
	_, err = f.admin.DisableUser(asUser, &authv1.DisableUserRequest{UserId: parseUnverified(t, admin.GetAccessToken()).Subject})
	grpctest.WantCode(t, err, codes.PermissionDenied)

	// The operator makes the first admin; the role applies from the next token.
	adminID := parseUnverified(t, admin.GetAccessToken()).Subject
	if err := f.store.SetRoles(ctx, adminID, []string{"user", "admin"}); err != nil {
		t.Fatal(err)
	}
	refreshed, err := f.refresh(admin.GetRefreshToken())
	if err != nil {
		t.Fatal(err)
	}
	asAdmin := grpctest.Bearer(ctx, refreshed.GetAccessToken())
	users, err := f.admin.ListUsers(asAdmin, &authv1.ListUsersRequest{PageSize: 1})
	if err != nil || len(users.GetUsers()) != 1 || users.GetNextPageToken() == "" {
		t.Fatalf("ListUsers page 1 = %v, %v", users, err)
	}
	page2, err := f.admin.ListUsers(asAdmin, &authv1.ListUsersRequest{PageSize: 1, PageToken: users.GetNextPageToken()})
	if err != nil || len(page2.GetUsers()) != 1 || page2.GetUsers()[0].GetUserId() == users.GetUsers()[0].GetUserId() {
		t.Fatalf("ListUsers page 2 = %v, %v", page2, err)
	}
	victimID := parseUnverified(t, victim.GetAccessToken()).Subject
	_, err = f.admin.SetUserRoles(asAdmin, &authv1.SetUserRolesRequest{UserId: victimID, Roles: []string{"wizard"}})
	grpctest.WantCode(t, err, codes.InvalidArgument)
	_, err = f.admin.DisableUser(asAdmin, &authv1.DisableUserRequest{UserId: "01a23d7e-0000-7000-8000-000000000000"})
	grpctest.WantCode(t, err, codes.NotFound)
	_, err = f.admin.DisableUser(asAdmin, &authv1.DisableUserRequest{UserId: "a\x00b"})
	grpctest.WantCode(t, err, codes.InvalidArgument)
	_, err = f.admin.ListUsers(asAdmin, &authv1.ListUsersRequest{PageToken: "AA"})
	grpctest.WantCode(t, err, codes.InvalidArgument)
	_, err = f.admin.DisableUser(asAdmin, &authv1.DisableUserRequest{UserId: adminID})
	grpctest.WantCode(t, err, codes.InvalidArgument)
	// Other spellings of a user id (upper case, urn:uuid:) name the same
	// account: the self-check holds and the victim is found.
	_, err = f.admin.DisableUser(asAdmin, &authv1.DisableUserRequest{UserId: "urn:uuid:" + strings.ToUpper(adminID)})
	grpctest.WantCode(t, err, codes.InvalidArgument)
	disabled, err := f.admin.DisableUser(asAdmin, &authv1.DisableUserRequest{UserId: strings.ToUpper(victimID)})
	if err != nil || disabled.GetSessionsEnded() != 1 {
		t.Fatalf("DisableUser = %v, %v", disabled, err)
	}
	_, err = f.refresh(victim.GetRefreshToken())
	grpctest.WantCode(t, err, codes.Unauthenticated)
	_, err = f.login("victim@example.com", "victim password")
	grpctest.WantCode(t, err, codes.Unauthenticated)

	events, err := f.admin.ListAuditEvents(asAdmin, &authv1.ListAuditEventsRequest{UserId: victimID})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range events.GetEvents() {
		seen = append(seen, e.GetKind()+"/"+e.GetOutcome())
		if e.GetClientAddress() == "" && e.GetKind() != "refresh" {
			t.Errorf("event %s has no client address", e.GetKind())
		}
		if strings.Contains(fmt.Sprint(e), "victim password") || strings.Contains(fmt.Sprint(e), victim.GetRefreshToken()) {
			t.Fatalf("audit event holds a secret: %v", e)
		}
	}
	want := "login/denied,refresh/failure,user_disabled/success,login/success,register/success"
	if strings.Join(seen, ",") != want {
		t.Fatalf("victim's audit trail = %v, want %s", seen, want)
	}

	// Re-enabling lets the account log in again; its old session stays ended.
	_, err = f.admin.EnableUser(asUser, &authv1.EnableUserRequest{UserId: victimID})
	grpctest.WantCode(t, err, codes.Unauthenticated) // the victim's session is over
	enabled, err := f.admin.EnableUser(asAdmin, &authv1.EnableUserRequest{UserId: victimID})
	if err != nil || enabled.GetUser().GetDisableTime() != nil {
		t.Fatalf("EnableUser = %v, %v", enabled, err)
	}
	if _, err := f.login("victim@example.com", "victim password"); err != nil {
		t.Fatalf("login after EnableUser: %v", err)
	}
	_, err = f.refresh(victim.GetRefreshToken())
	grpctest.WantCode(t, err, codes.Unauthenticated)
	_, err = f.admin.EnableUser(asAdmin, &authv1.EnableUserRequest{UserId: "01a23d7e-0000-7000-8000-000000000000"})
	grpctest.WantCode(t, err, codes.NotFound)

	// An admin whose role is removed loses admin powers at once, even with
	// a token that still claims the role.
	if err := f.store.SetRoles(ctx, adminID, []string{"user"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.admin.ListUsers(asAdmin, &authv1.ListUsersRequest{})
	grpctest.WantCode(t, err, codes.PermissionDenied)
	_, err = f.admin.SetUserRoles(asAdmin, &authv1.SetUserRolesRequest{UserId: adminID, Roles: []string{"user", "admin"}})
	grpctest.WantCode(t, err, codes.PermissionDenied)
}
