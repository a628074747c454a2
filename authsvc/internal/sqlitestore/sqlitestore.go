// Package sqlitestore opens authsvc's store in a SQLite file through a
// pure-Go driver (no cgo): the embedded default for a single machine.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mlgate/mlgate/authsvc/internal/schema"
	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open opens (creating if needed) the database at path and brings its schema
// up to date.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty path")
	}
	migrations, err := schema.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	// Only the last directory is created: a mistyped parent is an error,
	// not a new empty store somewhere unexpected.
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite store: cannot create %s: %w", dir, err)
	}
	if info, err := os.Stat(dir); err == nil && info.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("sqlite store: directory %s has mode %04o: any user could replace the database; run chmod o-w %s", dir, info.Mode().Perm(), dir)
	}
	// The file holds password hashes and signing keys: create it readable by
	// its owner only (SQLite gives its -wal and -shm files the same mode), and
	// refuse one that others can read.
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sqlite store: %s has mode %04o: it holds password hashes and signing keys; run chmod 600 %s*", path, info.Mode().Perm(), path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	f.Close()
	// WAL lets readers proceed during a write; busy_timeout makes concurrent
	// writers wait for the lock instead of failing; _txlock=immediate takes the
	// write lock at BEGIN, which serialises transactions that read then write
	// (a refresh-token exchange) and migrations across processes.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	s := sqlstore.New(db, dialect(migrations))
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	return s, nil
}

func dialect(migrations []schema.Migration) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:       "sqlite",
		Migrations: migrations,
		IsUniqueViolation: func(err error) bool {
			var e *sqlite.Error
			return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
		},
		IsMissingTable: func(err error) bool { return err != nil && strings.Contains(err.Error(), "no such table") },
		// BEGIN IMMEDIATE already holds the database's one write lock.
		Lock: func(context.Context, *sql.Tx) error { return nil },
	}
}
