// Package pgstore opens authsvc's store in PostgreSQL (pgx v5 through
// database/sql), for several authsvc replicas sharing one database.
package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/mlgate/mlgate/authsvc/internal/schema"
	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
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
	// StatementTimeout is set as the session's statement_timeout.
	StatementTimeout time.Duration
}

// DefaultConfig has the defaults the flags document.
func DefaultConfig(url string) Config {
	return Config{URL: url, MaxConns: 10, ConnectTimeout: 2 * time.Second, StatementTimeout: 5 * time.Second}
}

// advisoryLockKey serialises schema changes and key creation across replicas
// ("mlgate" in ASCII).
const advisoryLockKey = 0x6d6c67617465

// Open creates the pool. It does not connect: the first query does, so a
// replica can start while the database is still coming up. Call Migrate or
// CheckSchema before serving.
func Open(cfg Config) (*sqlstore.Store, error) {
	migrations, err := schema.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	cc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's parse error can quote the URL, password included.
		return nil, errors.New("postgres store: --database-url is not a valid PostgreSQL URL")
	}
	if cfg.MaxConns < 1 || cfg.ConnectTimeout <= 0 || cfg.StatementTimeout <= 0 {
		return nil, fmt.Errorf("postgres store: pool size and timeouts must be positive, got %d conns, %s connect, %s statement",
			cfg.MaxConns, cfg.ConnectTimeout, cfg.StatementTimeout)
	}
	cc.ConnectTimeout = cfg.ConnectTimeout
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	cc.RuntimeParams["application_name"] = "mlgate-authsvc"
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(int(cfg.MaxConns))
	db.SetMaxIdleConns(int(cfg.MaxConns))
	db.SetConnMaxIdleTime(5 * time.Minute)
	return sqlstore.New(db, dialect(migrations)), nil
}

// Describe names the database a URL points at, without its password, for
// messages that must say which store a command touched.
func Describe(url string) string {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return "PostgreSQL (unparsable URL)"
	}
	return fmt.Sprintf("PostgreSQL database %s on %s:%d", cc.Database, cc.Host, cc.Port)
}

// IsPermanent reports whether a connection error will not go away by
// waiting: the database does not exist. Start-up then fails at once instead
// of retrying. (Refused credentials are waited out: a secret or an IAM proxy
// may arrive after the service starts.)
func IsPermanent(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "3D000"
}

func dialect(migrations []schema.Migration) sqlstore.Dialect {
	pgCode := func(err error, code string) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == code
	}
	return sqlstore.Dialect{
		Name:              "postgres",
		Migrations:        migrations,
		NumberedParams:    true,
		ForUpdate:         " FOR UPDATE",
		IsUniqueViolation: func(err error) bool { return pgCode(err, "23505") },
		IsMissingTable:    func(err error) bool { return pgCode(err, "42P01") },
		MigrationSetup:    `SET LOCAL statement_timeout = 0`,
		Lock: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(advisoryLockKey))
			return err
		},
	}
}
