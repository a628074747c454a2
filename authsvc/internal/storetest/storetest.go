// Package storetest is the contract every authsvc store must pass. Each store
// implementation's tests call Run with a constructor for a fresh, empty,
// migrated store.
package storetest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/concurrently"

	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// Store is everything authsvc asks of a store.
type Store interface {
	CreateUser(ctx context.Context, u store.User) error
	UserByEmail(ctx context.Context, canonicalEmail string) (store.User, error)
	UserByID(ctx context.Context, id string) (store.User, error)
	ListUsers(ctx context.Context, afterID string, limit int) ([]store.User, error)
	UpgradePasswordHash(ctx context.Context, userID string, checked, upgraded []byte) error
	ChangePassword(ctx context.Context, userID string, hash []byte, exceptSession string, at time.Time) (int, error)
	SetRoles(ctx context.Context, userID string, roles []string) error
	DisableUser(ctx context.Context, userID string, at time.Time) (int, error)
	EnableUser(ctx context.Context, userID string) error

	CreateSession(ctx context.Context, s store.Session, first store.RefreshToken, checkedHash []byte) error
	Session(ctx context.Context, id string) (store.Session, error)
	RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, now time.Time, idle time.Duration, accessExpiresAt time.Time) (store.Session, error)
	SessionByRefreshToken(ctx context.Context, hash []byte) (store.Session, error)
	RevokeSession(ctx context.Context, id string, at time.Time, reason string) error
	RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time, reason string) (int, error)
	RevokedAfter(ctx context.Context, at time.Time, afterID string, tokensLiveAt, usedAfter time.Time, limit int) ([]store.Revocation, error)

	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	AddSigningKey(ctx context.Context, k store.SigningKey) error
	EnsureSigningKey(ctx context.Context, k store.SigningKey) error

	AppendAudit(ctx context.Context, e store.AuditEvent) error
	Prune(ctx context.Context, c store.PruneCutoffs) (store.Pruned, error)
	ListAudit(ctx context.Context, beforeID int64, limit int, userID string) ([]store.AuditEvent, error)

	CountHit(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error)
	PeekCount(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error)
	ResetCount(ctx context.Context, key string) error
}

// Run runs the contract against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"CreateThenLookup", testCreateThenLookup},
		{"LookupMissing", testLookupMissing},
		{"DuplicateEmail", testDuplicateEmail},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"CanceledContext", testCanceledContext},
		{"UpdateUser", testUpdateUser},
		{"ListUsersPages", testListUsersPages},
		{"RefreshRotationAndReuse", testRefreshRotationAndReuse},
		{"ConcurrentRefresh", testConcurrentRefresh},
		{"SessionLifetimes", testSessionLifetimes},
		{"RevokeAndFeed", testRevokeAndFeed},
		{"DisableUser", testDisableUser},
		{"SessionGuards", testSessionGuards},
		{"FeedPagesThroughOneInstant", testFeedPagesThroughOneInstant},
		{"AccessExpiryOnlyGrows", testAccessExpiryOnlyGrows},
		{"SigningKeys", testSigningKeys},
		{"Audit", testAudit},
		{"Prune", testPrune},
		{"ThrottleCounters", testThrottleCounters},
		{"ConcurrentThrottleHits", testConcurrentThrottleHits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC)

func newUser(id, email string) store.User {
	return store.User{ID: id, Email: email, PasswordHash: []byte("$2a$04$" + id), Roles: []string{"user"}, CreatedAt: t0}
}

func mustCreate(t *testing.T, s Store, u store.User) {
	t.Helper()
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.ID, err)
	}
}

func testCreateThenLookup(t *testing.T, s Store) {
	ctx := context.Background()
	want := newUser("u1", "ada@example.com")
	want.Roles = []string{"user", "analyst"}
	mustCreate(t, s, want)
	for name, lookup := range map[string]func() (store.User, error){
		"by email": func() (store.User, error) { return s.UserByEmail(ctx, "ada@example.com") },
		"by id":    func() (store.User, error) { return s.UserByID(ctx, "u1") },
	} {
		got, err := lookup()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != want.ID || got.Email != want.Email || string(got.PasswordHash) != string(want.PasswordHash) ||
			!got.CreatedAt.Equal(want.CreatedAt) || fmt.Sprint(got.Roles) != "[user analyst]" || got.Disabled() {
			t.Fatalf("%s = %+v, want %+v", name, got, want)
		}
	}
}

func testLookupMissing(t *testing.T, s Store) {
	if _, err := s.UserByEmail(context.Background(), "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByEmail(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := s.UserByID(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByID(missing) error = %v, want ErrNotFound", err)
	}
}

func testDuplicateEmail(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	if err := s.CreateUser(ctx, newUser("u2", "ada@example.com")); !errors.Is(err, store.ErrEmailTaken) {
		t.Fatalf("second CreateUser error = %v, want ErrEmailTaken", err)
	}
	if got, err := s.UserByEmail(ctx, "ada@example.com"); err != nil || got.ID != "u1" {
		t.Fatalf("after duplicate, UserByEmail = %+v, %v; want the first user", got, err)
	}
}

// Fifty writers race for one email: exactly one wins, the rest see
// ErrEmailTaken (never another error), and the stored row is the winner's.
func testConcurrentDuplicates(t *testing.T, s Store) {
	const writers = 50
	var (
		mu      sync.Mutex
		winners []string
		others  []error
	)
	concurrently.Run(writers, func(i int) {
		id := fmt.Sprintf("u%02d", i)
		err := s.CreateUser(context.Background(), newUser(id, "race@example.com"))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			winners = append(winners, id)
		case !errors.Is(err, store.ErrEmailTaken):
			others = append(others, err)
		}
	})
	if len(winners) != 1 || len(others) != 0 {
		t.Fatalf("winners = %v, unexpected errors = %v; want exactly one winner and only ErrEmailTaken", winners, others)
	}
	if got, err := s.UserByEmail(context.Background(), "race@example.com"); err != nil || got.ID != winners[0] {
		t.Fatalf("stored user = %+v, %v; want the winner %s", got, err, winners[0])
	}
}

func testCanceledContext(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.CreateUser(ctx, newUser("u1", "ada@example.com")); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateUser(canceled) error = %v, want context.Canceled", err)
	}
	if _, err := s.UserByEmail(context.Background(), "ada@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a canceled CreateUser stored a user: %v", err)
	}
}

func testUpdateUser(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	u1, err := s.UserByID(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	// An upgrade of a hash that has changed since it was checked (a
	// ChangePassword won the race) changes nothing.
	if err := s.UpgradePasswordHash(ctx, "u1", []byte("some-other-hash"), []byte("stale-upgrade")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpgradePasswordHash(changed hash) = %v, want ErrNotFound", err)
	}
	if err := s.UpgradePasswordHash(ctx, "u1", u1.PasswordHash, []byte("new-hash")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoles(ctx, "u1", []string{"user", "admin"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByID(ctx, "u1")
	if err != nil || string(got.PasswordHash) != "new-hash" || fmt.Sprint(got.Roles) != "[user admin]" {
		t.Fatalf("after updates: %+v, %v", got, err)
	}
	if err := s.SetRoles(ctx, "nobody", []string{"user"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetRoles(missing) = %v, want ErrNotFound", err)
	}
	if err := s.UpgradePasswordHash(ctx, "nobody", []byte("x"), []byte("y")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpgradePasswordHash(missing) = %v, want ErrNotFound", err)
	}
}

func testListUsersPages(t *testing.T, s Store) {
	for i := range 5 {
		mustCreate(t, s, newUser(fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i)))
	}
	var got []string
	after := ""
	for {
		page, err := s.ListUsers(context.Background(), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			got = append(got, u.ID)
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != "[u0 u1 u2 u3 u4]" {
		t.Fatalf("paged ids = %v", got)
	}
}

func newSession(t *testing.T, s Store, userID, sid string, at time.Time) []byte {
	t.Helper()
	hash := []byte("hash-" + sid + "-0")
	u, err := s.UserByID(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateSession(context.Background(),
		store.Session{ID: sid, UserID: userID, CreatedAt: at, LastUsedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour), AccessExpiresAt: at.Add(accessTTL)},
		store.RefreshToken{Hash: hash, SessionID: sid, CreatedAt: at}, u.PasswordHash)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return hash
}

// accessTTL is the access-token lifetime the contract tests issue with.
const accessTTL = 15 * time.Minute

func rotate(s Store, old []byte, next string, at time.Time) (store.Session, error) {
	return s.RotateRefreshToken(context.Background(), old, store.RefreshToken{Hash: []byte(next), CreatedAt: at}, at, 24*time.Hour, at.Add(accessTTL))
}

// R1 -> R2 works once; R1 again is reuse: the session is revoked, so R2 is
// dead too.
func testRefreshRotationAndReuse(t *testing.T, s Store) {
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	r1 := newSession(t, s, "u1", "s1", t0)
	ss, err := rotate(s, r1, "r2", t0.Add(time.Minute))
	if err != nil || ss.ID != "s1" || ss.UserID != "u1" || !ss.LastUsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("first rotation = %+v, %v", ss, err)
	}
	if _, err := rotate(s, r1, "r3", t0.Add(2*time.Minute)); !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reusing R1 = %v, want ErrRefreshReused", err)
	}
	got, err := s.Session(context.Background(), "s1")
	if err != nil || !got.Revoked() || got.RevokeReason != "refresh_reuse" {
		t.Fatalf("session after reuse = %+v, %v; want revoked for refresh_reuse", got, err)
	}
	if _, err := rotate(s, []byte("r2"), "r4", t0.Add(3*time.Minute)); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("R2 after reuse = %v, want ErrSessionEnded", err)
	}
	if _, err := rotate(s, []byte("never-issued"), "r5", t0); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("unknown token = %v, want ErrSessionEnded", err)
	}
}

// Ten concurrent exchanges of one token: exactly one succeeds.
func testConcurrentRefresh(t *testing.T, s Store) {
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	r1 := newSession(t, s, "u1", "s1", t0)
	const n = 10
	errs := make([]error, n)
	concurrently.Run(n, func(i int) {
		_, errs[i] = rotate(s, r1, fmt.Sprintf("next-%d", i), t0.Add(time.Minute))
	})
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrRefreshReused) && !errors.Is(err, store.ErrSessionEnded):
			t.Errorf("exchange %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent exchanges succeeded, want exactly 1 (%v)", ok, errs)
	}
}

func testSessionLifetimes(t *testing.T, s Store) {
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	idle := newSession(t, s, "u1", "idle", t0)
	if _, err := s.RotateRefreshToken(context.Background(), idle, store.RefreshToken{Hash: []byte("x1"), CreatedAt: t0}, t0.Add(2*time.Hour), time.Hour, t0.Add(2*time.Hour+accessTTL)); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("refresh after idle timeout = %v, want ErrSessionEnded", err)
	}
	if got, _ := s.Session(context.Background(), "idle"); got.RevokeReason != "idle" {
		t.Fatalf("idle session = %+v", got)
	}
	old := newSession(t, s, "u1", "old", t0)
	if _, err := rotate(s, old, "x2", t0.Add(8*24*time.Hour)); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("refresh after the absolute lifetime = %v, want ErrSessionEnded", err)
	}
	if got, _ := s.Session(context.Background(), "old"); got.RevokeReason != "expired" {
		t.Fatalf("expired session = %+v", got)
	}
}

func testRevokeAndFeed(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	r := newSession(t, s, "u1", "s1", t0)
	newSession(t, s, "u1", "s2", t0)
	newSession(t, s, "u1", "s3", t0)
	if ss, err := s.SessionByRefreshToken(ctx, r); err != nil || ss.ID != "s1" {
		t.Fatalf("SessionByRefreshToken = %+v, %v", ss, err)
	}
	if err := s.RevokeSession(ctx, "s1", t0.Add(time.Minute), "logout"); err != nil {
		t.Fatal(err)
	}
	// Ending it again keeps the first time and reason.
	if err := s.RevokeSession(ctx, "s1", t0.Add(time.Hour), "logout_all"); err != nil {
		t.Fatal(err)
	}
	n, err := s.RevokeUserSessions(ctx, "u1", "s3", t0.Add(2*time.Minute), "password_change")
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions except s3 = %d, %v; want 1", n, err)
	}
	feed, err := s.RevokedAfter(ctx, t0, "", t0, t0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed) != 2 || feed[0].SessionID != "s1" || !feed[0].RevokedAt.Equal(t0.Add(time.Minute)) || feed[1].SessionID != "s2" {
		t.Fatalf("RevokedAfter = %+v", feed)
	}
	if later, _ := s.RevokedAfter(ctx, t0.Add(90*time.Second), "", t0, t0, 100); len(later) != 1 || later[0].SessionID != "s2" {
		t.Fatalf("RevokedAfter(later) = %+v", later)
	}
	if !feed[0].AccessExpiresAt.Equal(t0.Add(accessTTL)) {
		t.Fatalf("revocation's access expiry = %s, want %s", feed[0].AccessExpiresAt, t0.Add(accessTTL))
	}
	// Once every token of the ended sessions has expired, they are left out.
	if expired, _ := s.RevokedAfter(ctx, t0, "", t0.Add(accessTTL), t0.Add(time.Second), 100); len(expired) != 0 {
		t.Fatalf("RevokedAfter(tokens expired) = %+v, want none", expired)
	}
	// A session whose token expiry was not recorded (an older replica
	// during a rolling upgrade) is listed while its last use is recent.
	u, _ := s.UserByID(ctx, "u1")
	old := store.Session{ID: "s4", UserID: "u1", CreatedAt: t0, LastUsedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(7 * 24 * time.Hour)}
	if err := s.CreateSession(ctx, old, store.RefreshToken{Hash: []byte("s4"), SessionID: "s4", CreatedAt: t0}, u.PasswordHash); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "s4", t0.Add(time.Hour), "logout"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Session(ctx, "s4"); err != nil || !got.AccessExpiresAt.IsZero() {
		t.Fatalf("session without a recorded token expiry reads back as %+v, %v", got, err)
	}
	unrecorded, err := s.RevokedAfter(ctx, t0, "", t0.Add(time.Hour), t0.Add(30*time.Minute), 100)
	if err != nil || len(unrecorded) != 1 || unrecorded[0].SessionID != "s4" || !unrecorded[0].AccessExpiresAt.IsZero() || !unrecorded[0].LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("RevokedAfter(unrecorded expiry) = %+v, %v; want s4, last used %s, no expiry", unrecorded, err, t0.Add(time.Hour))
	}
	if s3, _ := s.Session(ctx, "s3"); s3.Revoked() {
		t.Fatal("the excepted session was revoked")
	}
}

func testDisableUser(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	newSession(t, s, "u1", "s1", t0)
	newSession(t, s, "u1", "s2", t0)
	n, err := s.DisableUser(ctx, "u1", t0.Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("DisableUser = %d, %v; want 2 sessions ended", n, err)
	}
	u, err := s.UserByID(ctx, "u1")
	if err != nil || !u.Disabled() || !u.DisabledAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("user after disable = %+v, %v", u, err)
	}
	if ss, _ := s.Session(ctx, "s2"); ss.RevokeReason != "user_disabled" {
		t.Fatalf("session after disable = %+v", ss)
	}
	if _, err := s.DisableUser(ctx, "nobody", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DisableUser(missing) = %v, want ErrNotFound", err)
	}
	if err := s.EnableUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByID(ctx, "u1"); u.Disabled() {
		t.Fatal("still disabled after EnableUser")
	}
	if ss, _ := s.Session(ctx, "s1"); !ss.Revoked() {
		t.Fatal("enabling revived an ended session")
	}
	if err := s.EnableUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EnableUser(missing) = %v, want ErrNotFound", err)
	}
}

func testSigningKeys(t *testing.T, s Store) {
	ctx := context.Background()
	key := func(kid string, active time.Time) store.SigningKey {
		_, priv, _ := ed25519.GenerateKey(nil)
		return store.SigningKey{Kid: kid, Private: priv, CreatedAt: t0, ActiveAt: active}
	}
	first, second := key("k1", t0), key("k2", t0)
	if err := s.EnsureSigningKey(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureSigningKey(ctx, second); err != nil {
		t.Fatal(err)
	}
	rotated := key("k3", t0.Add(time.Hour))
	if err := s.AddSigningKey(ctx, rotated); err != nil {
		t.Fatal(err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Kid != "k1" || keys[1].Kid != "k3" || !keys[0].Private.Equal(first.Private) || !keys[1].ActiveAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("SigningKeys = %+v; want k1 (the second Ensure is a no-op) then k3", keys)
	}
}

func testAudit(t *testing.T, s Store) {
	ctx := context.Background()
	for i := range 5 {
		userID := "u1"
		if i%2 == 1 {
			userID = "u2"
		}
		e := store.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Kind: "login", UserID: userID, Email: userID + "@example.com", ClientAddr: "127.0.0.1:1", Outcome: fmt.Sprint(i)}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	newest, err := s.ListAudit(ctx, 0, 2, "")
	if err != nil || len(newest) != 2 || newest[0].Outcome != "4" || newest[1].Outcome != "3" {
		t.Fatalf("ListAudit newest = %+v, %v", newest, err)
	}
	older, err := s.ListAudit(ctx, newest[1].ID, 10, "")
	if err != nil || len(older) != 3 || older[0].Outcome != "2" {
		t.Fatalf("ListAudit older = %+v, %v", older, err)
	}
	mine, err := s.ListAudit(ctx, 0, 10, "u2")
	if err != nil || len(mine) != 2 || mine[0].UserID != "u2" || !mine[0].At.Equal(t0.Add(3*time.Second)) || mine[0].ClientAddr != "127.0.0.1:1" {
		t.Fatalf("ListAudit(u2) = %+v, %v", mine, err)
	}
}

// Housekeeping deletes sessions nobody can refresh whose tokens have all
// expired (with their refresh tokens), finished throttling windows and old
// audit events, and nothing that still matters.
func testPrune(t *testing.T, s Store) {
	ctx := context.Background()
	now := t0.Add(30 * 24 * time.Hour)
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	live := newSession(t, s, "u1", "live", now.Add(-time.Minute))
	newSession(t, s, "u1", "ended-token-live", now.Add(-time.Minute))
	ended := newSession(t, s, "u1", "ended", now.Add(-2*time.Hour))
	newSession(t, s, "u1", "idle", now.Add(-3*time.Hour))
	newSession(t, s, "u1", "expired", now.Add(-8*24*time.Hour))
	// Ended, its token expiry not recorded (an older replica), used lately.
	u, _ := s.UserByID(ctx, "u1")
	unrecorded := store.Session{ID: "ended-unrecorded", UserID: "u1", CreatedAt: now.Add(-5 * time.Minute), LastUsedAt: now.Add(-5 * time.Minute), ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, unrecorded, store.RefreshToken{Hash: []byte("unrecorded"), SessionID: "ended-unrecorded", CreatedAt: now}, u.PasswordHash); err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"ended-token-live", "ended", "ended-unrecorded"} {
		if err := s.RevokeSession(ctx, sid, now.Add(-time.Minute), "logout"); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"old", "current"} {
		start := now.Add(-time.Minute)
		if key == "old" {
			start = now.Add(-2 * time.Hour)
		}
		if _, _, err := s.CountHit(ctx, key, start, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []time.Time{now.Add(-100 * 24 * time.Hour), now.Add(-time.Hour)} {
		if err := s.AppendAudit(ctx, store.AuditEvent{At: at, Kind: "login", Outcome: "failure"}); err != nil {
			t.Fatal(err)
		}
	}
	cutoffs := store.PruneCutoffs{
		Now: now, IdleBefore: now.Add(-time.Hour), TokensExpiredBefore: now.Add(-2 * time.Minute),
		UsedBefore: now.Add(-2*time.Minute - accessTTL), CountersBefore: now.Add(-time.Hour), AuditBefore: now.Add(-90 * 24 * time.Hour),
	}
	pruned, err := s.Prune(ctx, cutoffs)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Pruned{Sessions: 3, Counters: 1, AuditEvents: 1}); pruned != want {
		t.Fatalf("Prune = %+v, want %+v", pruned, want)
	}
	for sid, kept := range map[string]bool{"live": true, "ended-token-live": true, "ended-unrecorded": true, "ended": false, "idle": false, "expired": false} {
		if _, err := s.Session(ctx, sid); (err == nil) != kept {
			t.Errorf("session %s after Prune: %v; kept %v wanted", sid, err, kept)
		}
	}
	if _, err := s.SessionByRefreshToken(ctx, ended); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh token of a pruned session: %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByRefreshToken(ctx, live); err != nil {
		t.Errorf("refresh token of a live session: %v", err)
	}
	if n, _, _ := s.PeekCount(ctx, "current", now, time.Hour); n != 1 {
		t.Errorf("current counter after Prune = %d, want 1", n)
	}
	if events, _ := s.ListAudit(ctx, 0, 10, ""); len(events) != 1 {
		t.Errorf("%d audit events after Prune, want 1", len(events))
	}
	// Nothing left to do: a second run deletes nothing.
	if again, err := s.Prune(ctx, cutoffs); err != nil || again != (store.Pruned{}) {
		t.Errorf("second Prune = %+v, %v", again, err)
	}
}

func testThrottleCounters(t *testing.T, s Store) {
	ctx := context.Background()
	w := time.Minute
	for i := 1; i <= 3; i++ {
		n, end, err := s.CountHit(ctx, "k", t0.Add(time.Duration(i)*time.Second), w)
		if err != nil || n != i || !end.Equal(t0.Add(time.Second).Add(w)) {
			t.Fatalf("hit %d = %d, %s, %v; want %d ending a minute after the first hit", i, n, end, err, i)
		}
	}
	if n, _, err := s.PeekCount(ctx, "k", t0.Add(30*time.Second), w); err != nil || n != 3 {
		t.Fatalf("PeekCount = %d, %v; want 3", n, err)
	}
	if n, _, err := s.PeekCount(ctx, "k", t0.Add(2*w), w); err != nil || n != 0 {
		t.Fatalf("PeekCount after the window = %d, %v; want 0", n, err)
	}
	if n, end, err := s.CountHit(ctx, "k", t0.Add(2*w), w); err != nil || n != 1 || !end.Equal(t0.Add(3*w)) {
		t.Fatalf("hit in a new window = %d, %s, %v; want a fresh count of 1", n, end, err)
	}
	if n, _, err := s.PeekCount(ctx, "other", t0, w); err != nil || n != 0 {
		t.Fatalf("PeekCount of an unknown key = %d, %v", n, err)
	}
	if err := s.ResetCount(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.PeekCount(ctx, "k", t0.Add(2*w), w); n != 0 {
		t.Fatalf("after reset: %d", n)
	}
}

// Replicas count hits on one key exactly.
func testConcurrentThrottleHits(t *testing.T, s Store) {
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = s.CountHit(context.Background(), "hot", t0, time.Hour)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, _, err := s.PeekCount(context.Background(), "hot", t0, time.Hour); err != nil || got != n {
		t.Fatalf("after %d concurrent hits the count is %d (%v)", n, got, err)
	}
}

// A login checked against a password that has since changed, or for an
// account since disabled, gets no session; ChangePassword ends the others.
func testSessionGuards(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	newSession(t, s, "u1", "keep", t0)
	newSession(t, s, "u1", "other", t0)
	old := newUser("u1", "").PasswordHash
	n, err := s.ChangePassword(ctx, "u1", []byte("new-hash"), "keep", t0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("ChangePassword = %d, %v; want 1 other session ended", n, err)
	}
	if ss, _ := s.Session(ctx, "keep"); ss.Revoked() {
		t.Fatal("the caller's session was ended")
	}
	late := store.Session{ID: "late", UserID: "u1", CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateSession(ctx, late, store.RefreshToken{Hash: []byte("late"), SessionID: "late", CreatedAt: t0}, old); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("session for a login checked against the old hash: %v, want ErrSessionEnded", err)
	}
	if _, err := s.DisableUser(ctx, "u1", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	late.ID = "late2"
	if err := s.CreateSession(ctx, late, store.RefreshToken{Hash: []byte("late2"), SessionID: "late2", CreatedAt: t0}, []byte("new-hash")); !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("session for a disabled account: %v, want ErrSessionEnded", err)
	}
	if _, err := s.ChangePassword(ctx, "nobody", []byte("h"), "", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ChangePassword(missing) = %v", err)
	}
}

// A session keeps the latest expiry of the access tokens issued in it, even
// when a later refresh issues a shorter-lived one (the lifetime was lowered
// across a restart): its revocation must outlive its longest token.
func testAccessExpiryOnlyGrows(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	r0 := newSession(t, s, "u1", "s1", t0)
	long := t0.Add(time.Minute + 24*time.Hour)
	if _, err := s.RotateRefreshToken(ctx, r0, store.RefreshToken{Hash: []byte("r1"), CreatedAt: t0}, t0.Add(time.Minute), time.Hour, long); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefreshToken(ctx, []byte("r1"), store.RefreshToken{Hash: []byte("r2"), CreatedAt: t0}, t0.Add(2*time.Minute), time.Hour, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, "s1"); !got.AccessExpiresAt.Equal(long) {
		t.Fatalf("session access expiry = %s, want the longest, %s", got.AccessExpiresAt, long)
	}
	if err := s.RevokeSession(ctx, "s1", t0.Add(3*time.Minute), "logout"); err != nil {
		t.Fatal(err)
	}
	feed, err := s.RevokedAfter(ctx, t0, "", t0.Add(time.Hour), t0.Add(time.Hour), 10)
	if err != nil || len(feed) != 1 || !feed[0].AccessExpiresAt.Equal(long) {
		t.Fatalf("an hour later, the feed = %+v, %v; want s1 until %s", feed, err, long)
	}
}

// More revocations at one instant than fit a page: paging by (time, id)
// still reaches them all.
func testFeedPagesThroughOneInstant(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreate(t, s, newUser("u1", "ada@example.com"))
	for i := range 7 {
		newSession(t, s, "u1", fmt.Sprintf("s%d", i), t0)
	}
	if _, err := s.RevokeUserSessions(ctx, "u1", "", t0.Add(time.Minute), "logout_all"); err != nil {
		t.Fatal(err)
	}
	var seen []string
	at, after := t0, ""
	for range 10 {
		page, err := s.RevokedAfter(ctx, at, after, t0, t0, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			seen = append(seen, r.SessionID)
		}
		if len(page) < 3 {
			break
		}
		at, after = page[len(page)-1].RevokedAt, page[len(page)-1].SessionID
	}
	if fmt.Sprint(seen) != "[s0 s1 s2 s3 s4 s5 s6]" {
		t.Fatalf("paged revocations = %v", seen)
	}
}
