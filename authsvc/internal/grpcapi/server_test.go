package grpcapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/concurrently"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	"github.com/mlgate/mlgate/authsvc/internal/sqlitestore"
	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/authsvc/internal/throttle"
	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/grpctest"
	"github.com/mlgate/mlgate/internal/syncbuf"
	"github.com/mlgate/mlgate/internal/token"
)

type fixture struct {
	health healthpb.HealthClient
	client authv1.AuthServiceClient
	admin  authv1.AdminServiceClient
	store  *sqlstore.Store
	logs   *syncbuf.Buffer
}

// generousLimits keep throttling out of the way of tests about other things.
var generousLimits = throttle.Policy{AccountFailures: 1000, AccountWindow: time.Minute, AddressAttempts: 100000, AddressWindow: time.Minute}

// newFixture wires authsvc as main does, on a real SQLite file, logging at
// debug level into a buffer the test can search.
func newFixture(t *testing.T, bcryptCost int) *fixture {
	t.Helper()
	return newFixtureWith(t, bcryptCost, generousLimits, 2, 64)
}

func newFixtureWith(t *testing.T, bcryptCost int, limits throttle.Policy, workers, queue int) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := signing.NewKey(time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureSigningKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	ring, err := signing.NewRing(ctx, st, signing.Config{Issuer: "mlgate-authsvc", Audience: "mlgate", TTL: 15 * time.Minute}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := password.NewHasher(bcryptCost)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := password.NewPool(hasher, workers, queue)
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := throttle.New(st, limits, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	accounts, err := account.NewService(st, pool, ring, limiter, account.Config{
		Sessions:  account.SessionPolicy{Idle: time.Hour, Absolute: 24 * time.Hour},
		Roles:     account.DefaultRolePolicy(),
		AccessTTL: 15 * time.Minute,
	}, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := token.NewVerifier(token.VerifierConfig{Issuer: "mlgate-authsvc", Audience: "mlgate"}, ring, accounts)
	if err != nil {
		t.Fatal(err)
	}
	srv, health := grpcserver.New(grpcserver.Config{Logger: log, Authenticate: grpcserver.BearerAuth(verifier, nil), PublicMethods: grpcapi.PublicMethods})
	api := grpcapi.NewServer(accounts, ring, log)
	authv1.RegisterAuthServiceServer(srv, api)
	authv1.RegisterAdminServiceServer(srv, api)
	health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	conn := grpctest.Dial(t, srv)
	return &fixture{
		health: healthpb.NewHealthClient(conn), client: authv1.NewAuthServiceClient(conn),
		admin: authv1.NewAdminServiceClient(conn), store: st, logs: logs,
	}
}

func (f *fixture) register(email, pw string) (*authv1.RegisterResponse, error) {
	return f.client.Register(context.Background(), &authv1.RegisterRequest{Email: email, Password: pw})
}

func (f *fixture) login(email, pw string) (*authv1.LoginResponse, error) {
	return f.client.Login(context.Background(), &authv1.LoginRequest{Email: email, Password: pw})
}

// Rows A1, A2, A4, A8: refused with INVALID_ARGUMENT naming the field, and
// nothing stored (the same email registers cleanly afterwards).
func TestRegisterRejectsBadInput(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	tests := []struct {
		name, email, pw, wantField string
	}{
		{"A1 empty request", "", "", "email"},
		{"A1 empty email", "", "long enough pw", "email"},
		{"A1 empty password", "a1@example.com", "", "password"},
		{"short password", "short@example.com", "1234567", "password"},
		{"A2 73-byte password", "a2@example.com", strings.Repeat("A", 73), "password"},
		{"A4 NUL in password", "a4@example.com", "abcd\x00efgh", "password"},
		{"A8 no at sign", "no-at-sign", "long enough pw", "email"},
		{"A8 300 characters", strings.Repeat("a", 288) + "@example.com", "long enough pw", "email"},
		{"A8 contains a newline", "a8\n@example.com", "long enough pw", "email"},
		{"A8 ends with a newline", "a8@example.com\n", "long enough pw", "email"},
		{"A8 newline header injection", "a8@example.com\nBcc: x@example.com", "long enough pw", "email"},
		{"display name", "Ada <ada@example.com>", "long enough pw", "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.register(tt.email, tt.pw)
			st := grpctest.WantCode(t, err, codes.InvalidArgument)
			if !strings.HasPrefix(st.Message(), tt.wantField+":") {
				t.Errorf("message %q does not name field %q", st.Message(), tt.wantField)
			}
			if tt.pw != "" && strings.Contains(st.Message(), tt.pw) {
				t.Errorf("message %q repeats the password", st.Message())
			}
		})
	}
	// Nothing was half-written: the addresses used above are still free.
	for _, email := range []string{"a1@example.com", "a2@example.com", "a4@example.com", "short@example.com"} {
		if _, err := f.register(email, "a fine password"); err != nil {
			t.Errorf("register %s after a refused attempt: %v", email, err)
		}
	}
}

// Row A3: bcrypt reads 72 bytes; a 73rd must not be ignored at login.
func TestLoginDoesNotTruncate(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	pw := strings.Repeat("A", 72)
	if _, err := f.register("a3@example.com", pw); err != nil {
		t.Fatal(err)
	}
	_, err := f.login("a3@example.com", pw+"X")
	grpctest.WantCode(t, err, codes.Unauthenticated)
	if _, err := f.login("a3@example.com", pw); err != nil {
		t.Fatalf("login with the real 72-byte password: %v", err)
	}
}

// Row A5: fifty concurrent registrations of one email with different
// passwords: one wins, and only its password logs in. On authsvc's default
// bcrypt pool (one worker on two cores, 32 waiting) too: the losers must hear
// ALREADY_EXISTS, not RESOURCE_EXHAUSTED from a queue filled by their hashes.
func TestConcurrentRegistrationsOfOneEmail(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cost           int
		workers, queue int
		checkLogins    int // how many of the passwords to try logging in with
	}{
		{"roomy pool", bcrypt.MinCost, 2, 64, 50},
		{"default pool at the lowest allowed cost", 10, 1, 32, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, tc.cost, generousLimits, tc.workers, tc.queue)
			const n = 50
			codesSeen := make([]codes.Code, n)
			concurrently.Run(n, func(i int) {
				_, err := f.register("race@example.com", fmt.Sprintf("password-%02d", i))
				codesSeen[i] = status.Code(err)
			})
			var winners []int
			for i, c := range codesSeen {
				switch c {
				case codes.OK:
					winners = append(winners, i)
				case codes.AlreadyExists:
				default:
					t.Errorf("registration %d: %s, want OK or ALREADY_EXISTS", i, c)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d registrations succeeded (%v), want exactly 1", len(winners), winners)
			}
			tries := []int{winners[0]}
			for i := 0; len(tries) < tc.checkLogins; i++ {
				if i != winners[0] {
					tries = append(tries, i)
				}
			}
			for _, i := range tries {
				_, err := f.login("race@example.com", fmt.Sprintf("password-%02d", i))
				if got, want := status.Code(err) == codes.OK, i == winners[0]; got != want {
					t.Errorf("login with password %d: %v; want success=%v", i, err, want)
				}
			}
		})
	}
}

// Row A6: one account per canonical email, whatever the case and spacing.
func TestEmailIsCanonical(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	reg, err := f.register("test@example.com", "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{"TEST@Example.COM", " test@example.com ", "  Test@EXAMPLE.com"} {
		_, err := f.register(variant, "another password")
		grpctest.WantCode(t, err, codes.AlreadyExists)
	}
	_, err = f.register("test@example.com\n", "another password")
	grpctest.WantCode(t, err, codes.InvalidArgument)
	login, err := f.login("Test@EXAMPLE.com", "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	claims := parseUnverified(t, login.GetAccessToken())
	if claims.Subject != reg.GetUserId() {
		t.Fatalf("sub = %q, want the registered user id %q", claims.Subject, reg.GetUserId())
	}
	if strings.Contains(login.GetAccessToken(), "example") {
		t.Fatal("token carries the email")
	}
}

// Row A7, part one: the same answer whether or not the email exists.
func TestFailedLoginsLookAlike(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	if _, err := f.register("known@example.com", "the right password"); err != nil {
		t.Fatal(err)
	}
	_, unknownErr := f.login("unknown@example.com", "the wrong password")
	_, wrongErr := f.login("known@example.com", "the wrong password")
	_, longErr := f.login("known@example.com", strings.Repeat("x", 100))
	for name, err := range map[string]error{"unknown email": unknownErr, "wrong password": wrongErr, "overlong password": longErr} {
		st := grpctest.WantCode(t, err, codes.Unauthenticated)
		if st.Message() != "invalid email or password" {
			t.Errorf("%s: message %q", name, st.Message())
		}
	}
}

// Row A7, part two: about the same duration. This checks a security property
// (bcrypt work is spent for unknown emails too, and a hash from before the
// cost was raised is padded to a current one), not a speed target; the
// tolerance is the case's 25% on medians of interleaved samples at a cost
// where bcrypt dwarfs everything else.
func TestFailedLoginTimingDoesNotRevealEmail(t *testing.T) {
	if testing.Short() {
		t.Skip("timing comparison skipped in -short mode")
	}
	const cost = 8
	for _, tc := range []struct {
		name         string
		registerCost int // the cost the known account's hash was made at
	}{
		{"hash at the configured cost", cost},
		{"hash from before the cost was raised", cost - 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, cost)
			hash, err := bcrypt.GenerateFromPassword([]byte("the right password"), tc.registerCost)
			if err != nil {
				t.Fatal(err)
			}
			u := store.User{ID: "01a24000-0000-7000-8000-000000000001", Email: "known@example.com", PasswordHash: hash, Roles: []string{"user"}, CreatedAt: time.Now()}
			if err := f.store.CreateUser(context.Background(), u); err != nil {
				t.Fatal(err)
			}
			const samples = 7
			var known, unknown []time.Duration
			for range samples {
				for _, email := range []string{"known@example.com", "unknown@example.com"} {
					start := time.Now()
					_, err := f.login(email, "the wrong password")
					elapsed := time.Since(start)
					grpctest.WantCode(t, err, codes.Unauthenticated)
					if email == "known@example.com" {
						known = append(known, elapsed)
					} else {
						unknown = append(unknown, elapsed)
					}
				}
			}
			mk, mu := median(known), median(unknown)
			ratio := float64(mu) / float64(mk)
			t.Logf("median failed login: known email %s, unknown email %s (ratio %.2f)", mk, mu, ratio)
			if ratio < 0.75 || ratio > 1.25 {
				t.Fatalf("unknown/known median ratio %.2f is outside 0.75–1.25", ratio)
			}
		})
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// Login returns a token that verifies against the published keys, with the
// claims the design fixes.
func TestLoginTokenVerifiesAgainstJWKS(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	reg, err := f.register("ada@example.com", "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Second)
	login, err := f.login("ada@example.com", "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	if login.GetTokenType() != "Bearer" {
		t.Errorf("token_type = %q", login.GetTokenType())
	}
	jwks, err := f.client.GetJwks(context.Background(), &authv1.GetJwksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.GetKeys()) != 1 {
		t.Fatalf("JWKS has %d keys", len(jwks.GetKeys()))
	}
	k := jwks.GetKeys()[0]
	if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetAlg() != "EdDSA" || k.GetUse() != "sig" || k.GetKid() == "" {
		t.Fatalf("JWK = %v", k)
	}
	raw, err := base64.RawURLEncoding.DecodeString(k.GetX())
	if err != nil {
		t.Fatal(err)
	}
	keys := staticKey{kid: k.GetKid(), pub: ed25519.PublicKey(raw)}
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: "mlgate-authsvc", Audience: "mlgate"}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), login.GetAccessToken())
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	if p.Subject != reg.GetUserId() || p.TokenID == "" {
		t.Errorf("principal = %+v, want sub %s and a jti", p, reg.GetUserId())
	}
	if !p.ExpiresAt.Equal(login.GetExpireTime().AsTime()) {
		t.Errorf("exp claim %s != expire_time %s", p.ExpiresAt, login.GetExpireTime().AsTime())
	}
	if ttl := p.ExpiresAt.Sub(before); ttl < 15*time.Minute || ttl > 15*time.Minute+2*time.Second {
		t.Errorf("token lives %s, want 15m", ttl)
	}
	claims := parseUnverified(t, login.GetAccessToken())
	if claims.IssuedAt == nil || claims.ID == "" {
		t.Errorf("claims lack iat or jti: %+v", claims)
	}
}

// Row A9: neither a password nor a token reaches any log line, at debug
// level, on success or failure.
func TestSecretsNeverLogged(t *testing.T) {
	f := newFixture(t, bcrypt.MinCost)
	const canary = "canary-pw-7f3a9c"
	if _, err := f.register("log@example.com", canary); err != nil {
		t.Fatal(err)
	}
	_, _ = f.register("log@example.com", canary+"-again")
	_, _ = f.register("not an email", canary)
	_, _ = f.register("log2@example.com", canary+strings.Repeat("x", 80))
	login, err := f.login("log@example.com", canary)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.login("log@example.com", canary+"-wrong")
	_, _ = f.login("nobody@example.com", canary)
	logs := f.logs.String()
	if !strings.Contains(logs, "finished call") {
		t.Fatalf("no call was logged; the check would prove nothing:\n%s", logs)
	}
	tok := login.GetAccessToken()
	sig := tok[strings.LastIndex(tok, ".")+1:]
	for name, secret := range map[string]string{"password": canary, "token": tok, "token signature": sig} {
		if n := strings.Count(logs, secret); n != 0 {
			t.Errorf("the %s appears %d times in the logs", name, n)
		}
	}
}

type staticKey struct {
	kid string
	pub ed25519.PublicKey
}

func (s staticKey) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if kid != s.kid {
		return nil, token.ErrUnknownKey
	}
	return s.pub, nil
}

func parseUnverified(t *testing.T, raw string) token.Claims {
	t.Helper()
	var c token.Claims
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "EdDSA" || tok.Header["kid"] == nil {
		t.Fatalf("header = %v", tok.Header)
	}
	return c
}
