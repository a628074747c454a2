package account_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	"github.com/mlgate/mlgate/authsvc/internal/sqlitestore"
	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// changeDuringUpgrade is the store with a ChangePassword landing just before
// a login's hash upgrade: the window between the login's session and its
// rehash, which takes a whole bcrypt.
type changeDuringUpgrade struct {
	*sqlstore.Store
	newHash []byte
}

func (s changeDuringUpgrade) UpgradePasswordHash(ctx context.Context, userID string, checked, upgraded []byte) error {
	if _, err := s.ChangePassword(ctx, userID, s.newHash, "", time.Now()); err != nil {
		return err
	}
	return s.Store.UpgradePasswordHash(ctx, userID, checked, upgraded)
}

// openStore is a fresh SQLite store with a signing key.
func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := signing.NewKey(time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureSigningKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	return st
}

func newAccounts(t *testing.T, st account.Store, cost int) *account.Service {
	t.Helper()
	return newAccountsAt(t, st, cost, 15*time.Minute, time.Now)
}

func newAccountsAt(t *testing.T, st account.Store, cost int, accessTTL time.Duration, now func() time.Time) *account.Service {
	t.Helper()
	ctx := context.Background()
	hasher, err := password.NewHasher(cost)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := password.NewPool(hasher, 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := signing.NewRing(ctx, st.(signing.KeyStore), signing.Config{Issuer: "mlgate-authsvc", Audience: "mlgate", TTL: accessTTL}, now)
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := account.NewService(st, pool, ring, nil, account.Config{
		Sessions:  account.SessionPolicy{Idle: time.Hour, Absolute: 24 * time.Hour},
		Roles:     account.DefaultRolePolicy(),
		AccessTTL: accessTTL,
	}, now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return accounts
}

// A login that upgrades an old-cost hash must not undo a password change
// that landed meanwhile: the old password would work again and the new one
// not at all.
func TestHashUpgradeLosesToAPasswordChange(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const oldPassword, newPassword = "the old password", "the new password"
	if _, err := newAccounts(t, st, bcrypt.MinCost).Register(ctx, "ada@example.com", oldPassword); err != nil {
		t.Fatal(err)
	}
	newHash, err := bcrypt.GenerateFromPassword([]byte(newPassword), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	// The cost went up since registration, so this login rehashes.
	racing := newAccounts(t, changeDuringUpgrade{Store: st, newHash: newHash}, bcrypt.MinCost+1)
	if _, err := racing.Login(ctx, "ada@example.com", oldPassword); err != nil {
		t.Fatal(err)
	}
	after := newAccounts(t, st, bcrypt.MinCost+1)
	if _, err := after.Login(ctx, "ada@example.com", oldPassword); !errors.Is(err, account.ErrBadCredentials) {
		t.Errorf("old password after the change: %v, want ErrBadCredentials", err)
	}
	if _, err := after.Login(ctx, "ada@example.com", newPassword); err != nil {
		t.Errorf("new password after the change: %v", err)
	}
}

// A session logged out after the token lifetime was lowered (a restart with
// a shorter --token-ttl) is remembered by verifiers until its longest token
// expires, not for the new, shorter lifetime.
func TestRevocationOutlivesTheSessionsLongestToken(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	clock := func() time.Time { return now }
	before := newAccountsAt(t, st, bcrypt.MinCost, 24*time.Hour, clock)
	if _, err := before.Register(ctx, "ada@example.com", "a fine password"); err != nil {
		t.Fatal(err)
	}
	login, err := before.Login(ctx, "ada@example.com", "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	after := newAccountsAt(t, st, bcrypt.MinCost, time.Second, clock)
	if err := after.Logout(ctx, login.Refresh); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	revocations, _, _, err := after.Revocations(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(revocations) != 1 || revocations[0].SessionID != login.SessionID || revocations[0].ForgetAt.Before(login.AccessExpires) {
		t.Fatalf("two hours after logout, the feed is %+v; want session %s until at least %s", revocations, login.SessionID, login.AccessExpires)
	}
}

// Housekeeping keeps an ended session while its access token may still be
// presented (verifiers need its revocation), and deletes it after.
func TestHousekeepingWaitsForTheLastToken(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	accounts := newAccountsAt(t, st, bcrypt.MinCost, 15*time.Minute, func() time.Time { return now })
	if _, err := accounts.Register(ctx, "ada@example.com", "a fine password"); err != nil {
		t.Fatal(err)
	}
	login, err := accounts.Login(ctx, "ada@example.com", "a fine password")
	if err != nil {
		t.Fatal(err)
	}
	if err := accounts.Logout(ctx, login.Refresh); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		after    time.Duration
		sessions int
	}{{time.Minute, 0}, {20 * time.Minute, 1}} {
		now = now.Add(step.after)
		pruned, err := accounts.Housekeep(ctx)
		if err != nil || pruned.Sessions != step.sessions {
			t.Fatalf("housekeeping %s later: %+v, %v; want %d sessions deleted", step.after, pruned, err, step.sessions)
		}
	}
}

// During a rolling upgrade an older replica issues tokens without recording
// their expiry: the feed then keeps the revocation for the token lifetime
// after the session's last use.
func TestRevocationOfASessionWithoutRecordedExpiry(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now().UTC()
	accounts := newAccountsAt(t, st, bcrypt.MinCost, 15*time.Minute, func() time.Time { return now })
	if _, err := accounts.Register(ctx, "ada@example.com", "a fine password"); err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	old := store.Session{ID: "from-an-old-replica", UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, old, store.RefreshToken{Hash: []byte("r"), SessionID: old.ID, CreatedAt: now}, u.PasswordHash); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSession(ctx, old.ID, now, "logout"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	revocations, _, _, err := accounts.Revocations(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(revocations) != 1 || revocations[0].ForgetAt.Before(old.LastUsedAt.Add(15*time.Minute)) {
		t.Fatalf("feed = %+v; want %s kept until at least its last use plus the token lifetime", revocations, old.ID)
	}
}
