// Package pgstore keeps users and signing keys in PostgreSQL, for several
// authsvc replicas sharing one database.
package pgstore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/authsvc/internal/schema"
	"github.com/mlgate/mlgate/authsvc/internal/store"
	"github.com/mlgate/mlgate/internal/jwk"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Config tunes the connection pool.
type Config struct {
	URL string
	// MaxConns bounds the pool (and so this replica's share of the server's
	// max_connections).
	MaxConns int32
	// ConnectTimeout bounds dialling: with the database down, a call fails
	// with ErrStoreUnavailable after this long rather than hanging.
	ConnectTimeout time.Duration
	// StatementTimeout is set as the server's statement_timeout.
	StatementTimeout time.Duration
}

// DefaultConfig has the defaults the flags document.
func DefaultConfig(url string) Config {
	return Config{URL: url, MaxConns: 10, ConnectTimeout: 2 * time.Second, StatementTimeout: 5 * time.Second}
}

// Store is a user store in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// advisoryLockKey serialises schema changes and key creation across replicas
// ("mlgate" in ASCII).
const advisoryLockKey = 0x6d6c67617465

// Open creates the pool. It does not connect: the first query does, so a
// replica can start while the database is still coming up.
func Open(cfg Config) (*Store, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's parse error can quote the URL, password included.
		return nil, errors.New("postgres store: --database-url is not a valid PostgreSQL URL")
	}
	if cfg.MaxConns < 1 || cfg.ConnectTimeout <= 0 || cfg.StatementTimeout <= 0 {
		return nil, fmt.Errorf("postgres store: pool size and timeouts must be positive, got %d conns, %s connect, %s statement",
			cfg.MaxConns, cfg.ConnectTimeout, cfg.StatementTimeout)
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	pc.ConnConfig.RuntimeParams["application_name"] = "mlgate-authsvc"
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close releases the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return classify(ctx, s.pool.Ping(ctx))
}

func migrations() ([]schema.Migration, error) { return schema.Load(migrationFiles, "migrations") }

// Migrate brings the schema up to date. Replicas starting together take turns
// on an advisory lock, so each migration runs once.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return s.inLockedTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > schema.Latest(ms) {
			return fmt.Errorf("database schema is version %d, newer than this authsvc knows (%d); run a newer authsvc", current, schema.Latest(ms))
		}
		for _, m := range schema.Pending(ms, current) {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
				return err
			}
		}
		return nil
	})
}

// CheckSchema fails unless the schema is exactly the version this build
// expects: for replicas started with migrations left to an operator.
func (s *Store) CheckSchema(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var current int
	err = s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		current, err = 0, nil
	}
	if err != nil {
		return classify(ctx, err)
	}
	if current != schema.Latest(ms) {
		return fmt.Errorf("database schema is version %d, this authsvc needs %d: run `authsvc migrate`", current, schema.Latest(ms))
	}
	return nil
}

func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func (s *Store) inLockedTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return classify(ctx, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, advisoryLockKey); err != nil {
		return classify(ctx, err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	return classify(ctx, tx.Commit(ctx))
}

// CreateUser inserts u; store.ErrEmailTaken if its email exists. The insert is
// committed (synchronously, as PostgreSQL commits by default) before it returns.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
		u.ID, u.Email, u.PasswordHash, u.CreatedAt)
	return classify(ctx, err)
}

// UserByEmail finds a user by canonical email; store.ErrNotFound if none.
func (s *Store) UserByEmail(ctx context.Context, canonicalEmail string) (store.User, error) {
	var u store.User
	err := s.pool.QueryRow(ctx,
		`SELECT id, email, password_hash, created_at FROM users WHERE email = $1`, canonicalEmail,
	).Scan(&u.ID, &u.Email, &u.PasswordHash, &u.CreatedAt)
	if err != nil {
		return store.User{}, classify(ctx, err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// SigningKey returns the newest signing key, creating one if the database has
// none. Replicas starting together agree on one key: creation happens under
// the advisory lock.
func (s *Store) SigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	var key ed25519.PrivateKey
	err := s.inLockedTx(ctx, func(tx pgx.Tx) error {
		var der []byte
		err := tx.QueryRow(ctx, `SELECT private_key FROM signing_keys ORDER BY created_at DESC, kid LIMIT 1`).Scan(&der)
		if err == nil {
			key, err = parseKey(der)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return classify(ctx, err)
		}
		_, key, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		der, err = x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		kid := jwk.Thumbprint(key.Public().(ed25519.PublicKey))
		_, err = tx.Exec(ctx, `INSERT INTO signing_keys (kid, private_key, created_at) VALUES ($1, $2, now())`, kid, der)
		return classify(ctx, err)
	})
	return key, err
}

func parseKey(der []byte) (ed25519.PrivateKey, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("stored signing key: %w", err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("stored signing key is %T, want Ed25519", parsed)
	}
	return key, nil
}

// classify turns driver errors into the user package's errors. When the
// caller's own context ended, that is the error (DEADLINE_EXCEEDED, not
// UNAVAILABLE), however the driver phrased it.
func classify(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		return store.ErrEmailTaken
	default:
		return fmt.Errorf("%w: %w", store.ErrStoreUnavailable, err)
	}
}
