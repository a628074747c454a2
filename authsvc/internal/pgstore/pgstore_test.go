package pgstore

import (
	"context"
	"crypto/ed25519"
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
