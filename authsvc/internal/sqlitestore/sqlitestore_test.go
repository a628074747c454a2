package sqlitestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/authsvc/internal/storetest"
)

func openTemp(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openTemp(t) })
}

// A restart reopens the same file: migrations run once and users survive.
func TestReopenKeepsUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "users.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, store.User{ID: "u1", Email: "ada@example.com", PasswordHash: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if u, err := s.UserByEmail(ctx, "ada@example.com"); err != nil || u.ID != "u1" {
		t.Fatalf("after reopen UserByEmail = %+v, %v", u, err)
	}
	if err := s.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema after Open: %v", err)
	}
	info, err := os.Stat(filepath.Dir(path))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode = %v, %v; want 0700", info.Mode().Perm(), err)
	}
}

func TestOpenUnwritablePathFails(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), filepath.Join(blocker, "users.db")); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

// The store's own directory is created; a missing parent (a typo in
// --data-dir) is an error, and nothing is created.
func TestOpenCreatesOnlyTheLastDirectory(t *testing.T) {
	root := t.TempDir()
	s, err := Open(context.Background(), filepath.Join(root, "data", "authsvc.db"))
	if err != nil {
		t.Fatalf("store directory under an existing parent: %v", err)
	}
	s.Close()
	typo := filepath.Join(root, "dta", "data")
	if _, err := Open(context.Background(), filepath.Join(typo, "authsvc.db")); err == nil || !strings.Contains(err.Error(), typo) {
		t.Fatalf("missing parent: %v, want an error naming %s", err, typo)
	}
	if _, err := os.Stat(filepath.Join(root, "dta")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing parent was created: %v", err)
	}
}

func TestOpenRefusesWorldWritableDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "users.db")); err == nil || !strings.Contains(err.Error(), "chmod o-w") {
		t.Fatalf("Open in a world-writable directory = %v", err)
	}
}

func TestDatabaseFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

func TestOpenRefusesReadableDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Open of a world-readable database = %v", err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s := openTemp(t)
	s.Close()
	if _, err := s.UserByEmail(context.Background(), "ada@example.com"); !errors.Is(err, store.ErrStoreUnavailable) {
		t.Fatalf("UserByEmail on closed store = %v, want ErrStoreUnavailable", err)
	}
}
