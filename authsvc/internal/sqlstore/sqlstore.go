// Package sqlstore is authsvc's store on database/sql: one implementation of
// every query, with a Dialect for what differs between SQLite and PostgreSQL
// (placeholders, error codes, cross-process locking, the DDL of migrations).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/schema"
	"github.com/mlgate/mlgate/authsvc/internal/store"
)

// Dialect is what one database needs done its own way.
type Dialect struct {
	Name       string
	Migrations []schema.Migration
	// NumberedParams: write ? placeholders as $1, $2, ... (PostgreSQL).
	NumberedParams bool
	// ForUpdate locks the rows a SELECT reads until the transaction ends
	// (" FOR UPDATE"); empty where a transaction already holds the database's
	// write lock (SQLite).
	ForUpdate         string
	IsUniqueViolation func(error) bool
	IsMissingTable    func(error) bool
	// Lock serialises schema changes and key creation across processes for
	// the rest of tx.
	Lock func(ctx context.Context, tx *sql.Tx) error
	// MigrationSetup, if set, runs first in the migration transaction (on
	// PostgreSQL: lift the statement timeout, which a backfill or an index
	// on a large table may exceed).
	MigrationSetup string
}

// Store keeps users, sessions, keys and audit events.
type Store struct {
	db *sql.DB
	d  Dialect
}

// New wraps an open database.
func New(db *sql.DB, d Dialect) *Store { return &Store{db: db, d: d} }

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.classify(ctx, s.db.PingContext(ctx)) }

// q rewrites ? placeholders for the dialect. mlgate's queries hold no ? in
// string literals, so a plain scan suffices.
func (s *Store) q(query string) string {
	if !s.d.NumberedParams {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// classify turns driver errors into the store package's errors. When the
// caller's own context ended, that is the error (DEADLINE_EXCEEDED, not
// UNAVAILABLE), however the driver phrased it.
func (s *Store) classify(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case s.d.IsUniqueViolation(err):
		return store.ErrEmailTaken
	case errors.Is(err, store.ErrRefreshReused), errors.Is(err, store.ErrSessionEnded), errors.Is(err, store.ErrNotFound):
		return err
	default:
		return fmt.Errorf("%w: %w", store.ErrStoreUnavailable, err)
	}
}

// inTx runs fn in a transaction, locked across processes when locked is set.
func (s *Store) inTx(ctx context.Context, locked bool, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.classify(ctx, err)
	}
	defer tx.Rollback()
	if locked {
		if err := s.d.Lock(ctx, tx); err != nil {
			return s.classify(ctx, err)
		}
	}
	if err := fn(tx); err != nil {
		return s.classify(ctx, err)
	}
	return s.classify(ctx, tx.Commit())
}

// Migrate brings the schema up to date, one process at a time.
func (s *Store) Migrate(ctx context.Context) error {
	return s.inTx(ctx, true, func(tx *sql.Tx) error {
		if s.d.MigrationSetup != "" {
			if _, err := tx.ExecContext(ctx, s.d.MigrationSetup); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if latest := schema.Latest(s.d.Migrations); current > latest {
			return fmt.Errorf("database schema is version %d, newer than this authsvc knows (%d); run a newer authsvc", current, latest)
		}
		for _, m := range schema.Pending(s.d.Migrations, current) {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version) VALUES (?)`), m.Version); err != nil {
				return err
			}
		}
		return nil
	})
}

// CheckSchema fails unless the schema is exactly the version this build
// expects: for replicas started with migrations left to an operator.
func (s *Store) CheckSchema(ctx context.Context) error {
	var current int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current)
	if err != nil && s.d.IsMissingTable(err) {
		current, err = 0, nil
	}
	if err != nil {
		return s.classify(ctx, err)
	}
	if want := schema.Latest(s.d.Migrations); current != want {
		return fmt.Errorf("database schema is version %d, this authsvc needs %d: run `authsvc migrate`", current, want)
	}
	return nil
}

// Times are stored as Unix microseconds in both dialects.
func micros(t time.Time) int64 { return t.UnixMicro() }

// optionalMicros stores a time that may be unknown in a NOT NULL column as
// 0 (what a row written before the column existed holds);
// fromOptionalMicros reads it back.
func optionalMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

func fromOptionalMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

func nullMicros(t time.Time) sql.NullInt64 {
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: !t.IsZero()}
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}
