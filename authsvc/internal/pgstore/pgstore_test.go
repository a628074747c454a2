package pgstore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/authsvc/internal/storetest"
	"github.com/mlgate/mlgate/internal/pgtest"
)

func openMigrated(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s, err := Open(DefaultConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openMigrated(t, pgtest.NewDatabase(t)) })
}

// Replicas starting at once all migrate; each migration runs once and all of
// them agree on one signing key.
func TestConcurrentStartup(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const replicas = 5
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		s, err := Open(DefaultConfig(url))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if errs[i] = s.Migrate(ctx); errs[i] != nil {
				return
			}
			_, priv, _ := ed25519.GenerateKey(nil)
			errs[i] = s.EnsureSigningKey(ctx, store.SigningKey{Kid: fmt.Sprintf("k%d", i), Private: priv, CreatedAt: time.Now(), ActiveAt: time.Now()})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	s := openMigrated(t, url)
	keys, err := s.SigningKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys stored (%v), want 1", len(keys), err)
	}
	if err := s.CheckSchema(context.Background()); err != nil {
		t.Fatalf("CheckSchema after migration: %v", err)
	}
}

func TestCheckSchemaOnEmptyDatabase(t *testing.T) {
	s, err := Open(DefaultConfig(pgtest.NewDatabase(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.CheckSchema(context.Background())
	if err == nil || !strings.Contains(err.Error(), "authsvc migrate") {
		t.Fatalf("CheckSchema on an empty database = %v, want advice to run authsvc migrate", err)
	}
}

// Nothing listens on the port: the store answers ErrStoreUnavailable within
// the connect timeout, and the caller's deadline wins when it is shorter.
func TestUnreachableDatabase(t *testing.T) {
	cfg := DefaultConfig("postgres://postgres@127.0.0.1:1/postgres?sslmode=disable")
	cfg.ConnectTimeout = 500 * time.Millisecond
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.UserByEmail(context.Background(), "a@example.com"); !errors.Is(err, store.ErrStoreUnavailable) {
		t.Fatalf("UserByEmail with the database down = %v, want ErrStoreUnavailable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, store.ErrStoreUnavailable) {
		t.Fatalf("Ping with a short deadline = %v", err)
	}
}

func TestOpenRejectsConfig(t *testing.T) {
	tests := map[string]Config{
		"not a url":      {URL: "postgres://user:secret@host:notaport/db", MaxConns: 1, ConnectTimeout: time.Second, StatementTimeout: time.Second},
		"zero pool":      {URL: "postgres://h/db", ConnectTimeout: time.Second, StatementTimeout: time.Second},
		"zero timeout":   {URL: "postgres://h/db", MaxConns: 1, StatementTimeout: time.Second},
		"zero statement": {URL: "postgres://h/db", MaxConns: 1, ConnectTimeout: time.Second},
	}
	for name, cfg := range tests {
		_, err := Open(cfg)
		if err == nil {
			t.Errorf("%s: Open succeeded", name)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
	}
}

// A database that does not exist will not appear by waiting; a server that is
// down may come back. Start-up retries only the second.
func TestIsPermanent(t *testing.T) {
	admin := pgtest.AdminURL(t)
	for _, tc := range []struct {
		name      string
		url       string
		permanent bool
	}{
		{"no such database", pgtest.WithDatabase(t, admin, "mlgate_no_such_db"), true},
		{"nothing listening", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(DefaultConfig(tc.url))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Ping(context.Background())
			if err == nil {
				t.Fatal("Ping succeeded")
			}
			if got := IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tc.permanent)
			}
		})
	}
}

func TestDescribeHidesThePassword(t *testing.T) {
	got := Describe("postgres://mlgate:s3cret@db.internal:5433/users?sslmode=require")
	if want := "PostgreSQL database users on db.internal:5433"; got != want || strings.Contains(got, "s3cret") {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

// A refresh racing a logout: the logout has revoked the session but not yet
// committed when the refresh reads it. The refresh must wait for it and then
// fail, rather than issue tokens for an ended session (or raise the expiry
// the revocation feed already reported).
func TestRefreshWaitsForAConcurrentLogout(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openMigrated(t, url)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.CreateUser(ctx, store.User{ID: "u1", Email: "ada@example.com", PasswordHash: []byte("h"), Roles: []string{"user"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{ID: "s1", UserID: "u1", CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AccessExpiresAt: now.Add(time.Minute)}
	if err := s.CreateSession(ctx, sess, store.RefreshToken{Hash: []byte("r0"), SessionID: "s1", CreatedAt: now}, []byte("h")); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	logout, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := logout.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = 'logout' WHERE id = 's1'`, now.Add(time.Second).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan error, 1)
	go func() {
		_, err := s.RotateRefreshToken(ctx, []byte("r0"), store.RefreshToken{Hash: []byte("r1"), CreatedAt: now}, now.Add(2*time.Second), time.Hour, now.Add(10*time.Minute))
		refreshed <- err
	}()
	time.Sleep(200 * time.Millisecond) // the refresh is now waiting on the row
	if err := logout.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-refreshed; !errors.Is(err, store.ErrSessionEnded) {
		t.Fatalf("refresh racing a logout: %v, want ErrSessionEnded", err)
	}
	if got, _ := s.Session(ctx, "s1"); !got.AccessExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("the ended session's token expiry moved to %s", got.AccessExpiresAt)
	}
}
