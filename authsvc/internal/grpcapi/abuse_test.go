package grpcapi_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/authsvc/internal/throttle"
	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	"github.com/mlgate/mlgate/internal/grpctest"
)

func retryDelay(t *testing.T, err error) time.Duration {
	t.Helper()
	st := grpctest.WantCode(t, err, codes.ResourceExhausted)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("RESOURCE_EXHAUSTED without RetryInfo: %v", st)
	return 0
}

// Five failures lock the email; registered and unknown emails are throttled
// with the same code, message and retry delay, so throttling reveals nothing.
func TestLoginThrottlingPerAccount(t *testing.T) {
	f := newFixtureWith(t, bcrypt.MinCost, throttle.Policy{AccountFailures: 5, AccountWindow: 15 * time.Minute, AddressAttempts: 1000, AddressWindow: time.Minute}, 2, 64)
	if _, err := f.register("known@example.com", "the right password"); err != nil {
		t.Fatal(err)
	}
	messages := map[string]string{}
	for _, email := range []string{"known@example.com", "unknown@example.com"} {
		for i := range 5 {
			_, err := f.login(email, "a wrong password")
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("%s failure %d: %v", email, i+1, err)
			}
		}
		// Locked now, even with the right password.
		_, err := f.login(email, "the right password")
		if d := retryDelay(t, err); d < 14*time.Minute || d > 15*time.Minute {
			t.Fatalf("%s: retry delay %s, want about 15m", email, d)
		}
		messages[email] = status.Convert(err).Message()
	}
	if messages["known@example.com"] != messages["unknown@example.com"] {
		t.Fatalf("throttled messages differ: %q vs %q", messages["known@example.com"], messages["unknown@example.com"])
	}
	// Other accounts are unaffected.
	if _, err := f.register("other@example.com", "the right password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.login("other@example.com", "the right password"); err != nil {
		t.Fatalf("another account: %v", err)
	}
}

// A flood of throttled logins writes one audit event, not one per attempt:
// unauthenticated callers must not be able to fill the audit log.
func TestThrottledFloodIsAuditedOnce(t *testing.T) {
	f := newFixtureWith(t, bcrypt.MinCost, throttle.Policy{AccountFailures: 2, AccountWindow: 15 * time.Minute, AddressAttempts: 1000, AddressWindow: time.Minute}, 2, 64)
	for i := range 40 {
		_, err := f.login("victim@example.com", "a wrong password")
		want := codes.Unauthenticated
		if i >= 2 {
			want = codes.ResourceExhausted
		}
		grpctest.WantCode(t, err, want)
	}
	events, err := f.store.ListAudit(context.Background(), 0, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, e := range events {
		outcomes[e.Outcome]++
	}
	if outcomes["throttled"] != 1 || outcomes["failure"] != 2 {
		t.Fatalf("audit outcomes after 2 failures and 38 throttled attempts: %v; want 2 failures, 1 throttled", outcomes)
	}
}

func TestLoginThrottlingPerAddress(t *testing.T) {
	f := newFixtureWith(t, bcrypt.MinCost, throttle.Policy{AccountFailures: 1000, AccountWindow: time.Minute, AddressAttempts: 10, AddressWindow: 5 * time.Minute}, 2, 64)
	for i := range 10 {
		_, err := f.login("spray@example.com", "guess "+string(rune('a'+i)))
		grpctest.WantCode(t, err, codes.Unauthenticated)
	}
	_, err := f.login("someone-else@example.com", "guess")
	if d := retryDelay(t, err); d <= 0 || d > 5*time.Minute {
		t.Fatalf("retry delay %s", d)
	}
}

// A login flood: bcrypt runs on one worker with a short queue; the overflow
// is RESOURCE_EXHAUSTED at once, while health, JWKS and refresh keep
// answering promptly.
func TestLoginFloodIsBounded(t *testing.T) {
	f := newFixtureWith(t, 10, generousLimits, 1, 2)
	login := f.signup(t, "flood@example.com", "a fine password")
	var (
		ok, busy, other atomic.Int64
		wg              sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := f.client.Login(context.Background(), &authv1.LoginRequest{Email: "flood@example.com", Password: "a wrong password"})
				switch status.Code(err) {
				case codes.Unauthenticated:
					ok.Add(1)
				case codes.ResourceExhausted:
					busy.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	refresh := login.GetRefreshToken()
	var slowest time.Duration
	for range 10 {
		start := time.Now()
		if _, err := f.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health during the flood: %v", err)
		}
		if _, err := f.client.GetJwks(context.Background(), &authv1.GetJwksRequest{}); err != nil {
			t.Errorf("GetJwks during the flood: %v", err)
		}
		r, err := f.refresh(refresh)
		if err != nil {
			t.Fatalf("refresh during the flood: %v", err)
		}
		refresh = r.GetRefreshToken()
		slowest = max(slowest, time.Since(start))
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	wg.Wait()
	t.Logf("flood: %d checked, %d refused as busy, %d other; slowest health+JWKS+refresh round %s", ok.Load(), busy.Load(), other.Load(), slowest)
	if busy.Load() == 0 || ok.Load() == 0 || other.Load() != 0 {
		t.Fatalf("want both checked and busy-refused logins and nothing else: %d checked, %d busy, %d other", ok.Load(), busy.Load(), other.Load())
	}
}

// Guessing the old password through ChangePassword (a stolen access token)
// is throttled like logins, and registrations count per address.
func TestPasswordGuessingBeyondLogin(t *testing.T) {
	f := newFixtureWith(t, bcrypt.MinCost, throttle.Policy{AccountFailures: 3, AccountWindow: 15 * time.Minute, AddressAttempts: 4, AddressWindow: 5 * time.Minute}, 2, 64)
	login := f.signup(t, "victim@example.com", "the right password")
	ctx := grpctest.Bearer(context.Background(), login.GetAccessToken())
	for i := range 3 {
		_, err := f.client.ChangePassword(ctx, &authv1.ChangePasswordRequest{OldPassword: "guess", NewPassword: "new password 1"})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	_, err := f.client.ChangePassword(ctx, &authv1.ChangePasswordRequest{OldPassword: "the right password", NewPassword: "new password 1"})
	retryDelay(t, err)
	// The signup above registered once; three more fill the address budget.
	for i := range 3 {
		if _, err := f.register("more"+string(rune('a'+i))+"@example.com", "a fine password"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.register("onemore@example.com", "a fine password")
	retryDelay(t, err)
}
