// Package sqlitestore keeps users in a SQLite file through a pure-Go driver
// (no cgo), the embedded default for a single machine.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mlgate/mlgate/authsvc/internal/schema"
	"github.com/mlgate/mlgate/authsvc/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a user store in one SQLite file.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database at path and brings its schema
// up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	dir := filepath.Dir(path)
	if info, err := os.Stat(dir); err == nil && info.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("sqlite store: directory %s has mode %04o: any user could replace the database; run chmod o-w %s", dir, info.Mode().Perm(), dir)
	}
	// The file holds password hashes: create it readable by its owner only
	// (SQLite gives its -wal and -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	f.Close()
	// WAL lets readers proceed during a write; busy_timeout makes concurrent
	// writers wait for the lock instead of failing; _txlock=immediate takes the
	// write lock at BEGIN so a transaction never fails half way on upgrade.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return classify(err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	migrations, err := schema.Load(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	// _txlock=immediate: the transaction holds SQLite's write lock from BEGIN,
	// so two processes opening one file migrate one after the other.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY) STRICT`); err != nil {
		return fmt.Errorf("sqlite store: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite store: migrate: %w", err)
	}
	if current > schema.Latest(migrations) {
		return fmt.Errorf("sqlite store: database schema is version %d, newer than this authsvc knows (%d); run a newer authsvc", current, schema.Latest(migrations))
	}
	for _, m := range schema.Pending(migrations, current) {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("sqlite store: migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, m.Version); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// CreateUser inserts u; store.ErrEmailTaken if its email exists.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		u.ID, u.Email, u.PasswordHash, u.CreatedAt.UnixMicro())
	return classify(err)
}

// UserByEmail finds a user by canonical email; store.ErrNotFound if none.
func (s *Store) UserByEmail(ctx context.Context, canonicalEmail string) (store.User, error) {
	var (
		u       store.User
		created int64
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT id, email, password_hash, created_at FROM users WHERE email = ?`, canonicalEmail,
	).Scan(&u.ID, &u.Email, &u.PasswordHash, &created)
	if err != nil {
		return store.User{}, classify(err)
	}
	u.CreatedAt = time.UnixMicro(created).UTC()
	return u, nil
}

// classify turns driver errors into the user package's errors; the caller's own
// cancellation or deadline passes through unchanged.
func classify(err error) error {
	var sqliteErr *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &sqliteErr) && sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return store.ErrEmailTaken
	default:
		return fmt.Errorf("%w: %w", store.ErrStoreUnavailable, err)
	}
}
