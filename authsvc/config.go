package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/pgstore"
	"github.com/mlgate/mlgate/internal/config"
)

type settings struct {
	grpcAddr       string
	httpAddr       string
	dataDir        string
	databaseURL    string
	signingKeyFile string
	issuer         string
	audience       string
	tokenTTL       time.Duration
	bcryptCost     int
	logLevel       string

	// PostgreSQL only.
	db          pgstore.Config
	dbWait      time.Duration
	autoMigrate bool
}

// maxTokenTTL keeps access tokens short-lived: until revocation exists, expiry
// is the only way a token stops working.
const maxTokenTTL = 24 * time.Hour

// maxBcryptCost keeps one hash under about five seconds on current hardware;
// cost 31 would take days per login.
const maxBcryptCost = 16

type storeKind int

const (
	sqliteStore storeKind = iota
	postgresStore
)

func parseSettings(args []string, lookupEnv func(string) (string, bool), output io.Writer) (settings, error) {
	var s settings
	var maxConns int
	defaults := pgstore.DefaultConfig("")
	fs := flag.NewFlagSet("authsvc", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&s.grpcAddr, "grpc-addr", "localhost:50051", "gRPC listen address")
	fs.StringVar(&s.httpAddr, "http-addr", "localhost:8081", "HTTP listen address (JWKS at /.well-known/jwks.json, /healthz, /readyz)")
	fs.StringVar(&s.dataDir, "data-dir", "data", "directory for the SQLite store and the signing key")
	fs.StringVar(&s.databaseURL, "database-url", "", `user store: "sqlite:PATH" or "postgres://USER@HOST:PORT/DB" (default sqlite:DATA_DIR/authsvc.db)`)
	fs.StringVar(&s.signingKeyFile, "signing-key-file", "", "SQLite mode: Ed25519 private key, PKCS #8 PEM, mode 0600; created if absent (default DATA_DIR/signing-key.pem). PostgreSQL mode keeps the keys in the database")
	fs.StringVar(&s.issuer, "issuer", "mlgate-authsvc", "iss claim of issued tokens")
	fs.StringVar(&s.audience, "audience", "mlgate", "aud claim of issued tokens")
	fs.DurationVar(&s.tokenTTL, "token-ttl", 15*time.Minute, "access token lifetime (at most 24h)")
	fs.IntVar(&s.bcryptCost, "bcrypt-cost", password.DefaultCost, "bcrypt cost for new password hashes (4 to 16; each step doubles the work)")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&maxConns, "db-max-conns", int(defaults.MaxConns), "PostgreSQL: connection pool size")
	fs.DurationVar(&s.db.ConnectTimeout, "db-connect-timeout", defaults.ConnectTimeout, "PostgreSQL: how long to try to connect before answering UNAVAILABLE")
	fs.DurationVar(&s.db.StatementTimeout, "db-statement-timeout", defaults.StatementTimeout, "PostgreSQL: server-side statement_timeout")
	fs.DurationVar(&s.dbWait, "db-wait", 30*time.Second, "PostgreSQL: how long start-up waits for the database before giving up")
	fs.BoolVar(&s.autoMigrate, "auto-migrate", true, "PostgreSQL: apply schema migrations at start (false: refuse to start unless `authsvc migrate` has run)")
	if err := config.Parse(fs, "authsvc", args, lookupEnv); err != nil {
		return s, err
	}
	s.db.URL = s.databaseURL
	s.db.MaxConns = int32(maxConns)
	if s.signingKeyFile == "" {
		s.signingKeyFile = filepath.Join(s.dataDir, "signing-key.pem")
	}
	if s.databaseURL == "" {
		s.databaseURL = "sqlite:" + filepath.Join(s.dataDir, "authsvc.db")
	}
	return s, s.validate(maxConns)
}

func (s settings) validate(maxConns int) error {
	switch {
	case s.dataDir == "":
		return errors.New("--data-dir must not be empty")
	case s.tokenTTL < time.Second || s.tokenTTL > maxTokenTTL:
		return fmt.Errorf("--token-ttl must be between 1s and %s, got %s", maxTokenTTL, s.tokenTTL)
	case strings.TrimSpace(s.issuer) == "" || strings.TrimSpace(s.audience) == "":
		return errors.New("--issuer and --audience must not be empty")
	case s.bcryptCost < 4 || s.bcryptCost > maxBcryptCost:
		return fmt.Errorf("--bcrypt-cost must be between 4 and %d, got %d", maxBcryptCost, s.bcryptCost)
	case maxConns < 1 || maxConns > 1000:
		return fmt.Errorf("--db-max-conns must be between 1 and 1000, got %d", maxConns)
	case s.db.ConnectTimeout <= 0 || s.db.StatementTimeout <= 0 || s.dbWait < 0:
		return errors.New("--db-connect-timeout and --db-statement-timeout must be positive, --db-wait not negative")
	}
	_, _, err := s.store()
	return err
}

// store says which store --database-url names, and for SQLite the file path.
func (s settings) store() (storeKind, string, error) {
	switch {
	case strings.HasPrefix(s.databaseURL, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(s.databaseURL, "sqlite:"), "//")
		if path == "" {
			return 0, "", errors.New(`--database-url "sqlite:" needs a file path, like sqlite:data/authsvc.db`)
		}
		return sqliteStore, path, nil
	case strings.HasPrefix(s.databaseURL, "postgres://"), strings.HasPrefix(s.databaseURL, "postgresql://"):
		return postgresStore, "", nil
	default:
		return 0, "", fmt.Errorf(`--database-url must start with "sqlite:" or "postgres://", got %q`, redactURL(s.databaseURL))
	}
}

// redactURL keeps a database URL's scheme only, so a password in it never
// reaches a message.
func redactURL(u string) string {
	if scheme, _, ok := strings.Cut(u, ":"); ok {
		return scheme + ":…"
	}
	return "…"
}
