package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/pgstore"
	"github.com/mlgate/mlgate/authsvc/internal/throttle"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/tlsconfig"
	"github.com/mlgate/mlgate/internal/tracing"
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

	tracing    tracing.Config
	tls        tlsconfig.Server
	sessions   account.SessionPolicy
	loginLimit throttle.Policy
	bcryptPool struct{ workers, queue int }
	roleScopes account.RolePolicy
	keyReload  time.Duration
	// auditRetention bounds the audit log's age; 0 keeps every event.
	auditRetention time.Duration

	// Subcommands only.
	activationDelay time.Duration // rotate-key
	grantEmail      string        // grant-role
	grantRole       string        // grant-role
}

// Below cost 10 a stolen hash database is cheap to crack (OWASP asks for at
// least 10); above 16 one hash takes seconds and cost 31 days.
const (
	minBcryptCost = 10
	maxBcryptCost = 16
)

type storeKind int

const (
	sqliteStore storeKind = iota
	postgresStore
)

func parseSettings(subcommand string, args []string, environ []string, output io.Writer) (settings, error) {
	var s settings
	var maxConns int
	roleScopes := account.DefaultRolePolicy().String()
	defaults := pgstore.DefaultConfig("")
	name := "authsvc"
	if subcommand != "serve" {
		name += " " + subcommand
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&s.grpcAddr, "grpc-addr", "localhost:50051", "gRPC listen address")
	fs.StringVar(&s.httpAddr, "http-addr", "localhost:8081", "HTTP listen address (JWKS at /.well-known/jwks.json, /healthz, /readyz, /metrics)")
	fs.StringVar(&s.dataDir, "data-dir", "data", "directory of the SQLite store (users, sessions, signing keys); created if its parent exists")
	fs.StringVar(&s.databaseURL, "database-url", "", `user store: "sqlite:PATH" or "postgres://USER@HOST:PORT/DB" (default sqlite:DATA_DIR/authsvc.db)`)
	fs.StringVar(&s.signingKeyFile, "signing-key-file", "", "an Ed25519 key (PKCS #8 PEM, mode 0600) to import as the first signing key of a new store (default DATA_DIR/signing-key.pem, if it exists); keys then live in the store")
	fs.StringVar(&s.issuer, "issuer", "mlgate-authsvc", "iss claim of issued tokens")
	fs.StringVar(&s.audience, "audience", "mlgate", "aud claim of issued tokens")
	fs.DurationVar(&s.tokenTTL, "token-ttl", 15*time.Minute, "access token lifetime (at most 24h)")
	fs.IntVar(&s.bcryptCost, "bcrypt-cost", password.DefaultCost, "bcrypt cost for new password hashes (10 to 16; each step doubles the work)")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	s.tls.RegisterFlags(fs)
	fs.StringVar(&s.tracing.Endpoint, "otlp-endpoint", "", "OpenTelemetry collector (host:port, OTLP/gRPC) to export traces to; empty exports none")
	fs.BoolVar(&s.tracing.Insecure, "otlp-insecure", false, "send traces to --otlp-endpoint without TLS (a local agent)")
	fs.IntVar(&maxConns, "db-max-conns", int(defaults.MaxConns), "PostgreSQL: connection pool size")
	fs.DurationVar(&s.db.ConnectTimeout, "db-connect-timeout", defaults.ConnectTimeout, "PostgreSQL: how long to try to connect before answering UNAVAILABLE")
	fs.DurationVar(&s.db.StatementTimeout, "db-statement-timeout", defaults.StatementTimeout, "PostgreSQL: server-side statement_timeout")
	fs.DurationVar(&s.dbWait, "db-wait", 30*time.Second, "PostgreSQL: how long start-up waits for the database before giving up")
	fs.BoolVar(&s.autoMigrate, "auto-migrate", true, "PostgreSQL: apply schema migrations at start (false: refuse to start unless `authsvc migrate` has run)")
	fs.DurationVar(&s.sessions.Idle, "session-idle-timeout", 24*time.Hour, "a session not refreshed for this long ends")
	fs.DurationVar(&s.sessions.Absolute, "session-max-lifetime", 7*24*time.Hour, "a session ends this long after login, however active")
	fs.DurationVar(&s.auditRetention, "audit-retention", 90*24*time.Hour, "audit events older than this are deleted (hourly housekeeping); 0 keeps them all")
	fs.StringVar(&roleScopes, "role-scopes", roleScopes, `scopes each role's tokens carry: "role=scope scope;role=scope"`)
	fs.DurationVar(&s.keyReload, "key-reload", 5*time.Second, "how often signing keys are re-read from the store (picks up rotations)")
	limits := throttle.DefaultPolicy()
	fs.IntVar(&s.loginLimit.AccountFailures, "login-max-failures", limits.AccountFailures, "failed logins for one email that lock it until --login-failure-window ends")
	fs.DurationVar(&s.loginLimit.AccountWindow, "login-failure-window", limits.AccountWindow, "window for --login-max-failures")
	fs.IntVar(&s.loginLimit.AddressAttempts, "login-max-per-address", limits.AddressAttempts, "login attempts allowed from one client address per --login-address-window")
	fs.DurationVar(&s.loginLimit.AddressWindow, "login-address-window", limits.AddressWindow, "window for --login-max-per-address")
	fs.IntVar(&s.bcryptPool.workers, "bcrypt-workers", 0, "password hashes computed at once; 0 means one fewer than the cores, at least 1")
	fs.IntVar(&s.bcryptPool.queue, "bcrypt-queue", 32, "password checks that may wait for a worker; beyond that, RESOURCE_EXHAUSTED at once")
	// Subcommand settings are declared for every subcommand, so that one
	// environment serves them all and a misspelt variable is always caught.
	fs.DurationVar(&s.activationDelay, "activation-delay", 2*time.Minute, "rotate-key: publish the new key now, sign with it after this delay (longer than every verifier's JWKS refresh)")
	fs.StringVar(&s.grantEmail, "email", "", "grant-role, unlock: the account's email")
	fs.StringVar(&s.grantRole, "role", account.RoleAdmin, "grant-role: the role to add")
	if subcommand == "config-reference" {
		config.Reference(os.Stdout, fs, "authsvc")
		return s, flag.ErrHelp
	}
	if err := config.Parse(fs, "authsvc", args, environ, usage); err != nil {
		return s, err
	}
	if s.bcryptPool.workers == 0 {
		s.bcryptPool.workers = password.DefaultWorkers()
	}
	s.db.URL = s.databaseURL
	s.db.MaxConns = int32(maxConns)
	policy, err := account.ParseRolePolicy(roleScopes)
	if err != nil {
		return s, fmt.Errorf("--role-scopes: %w", err)
	}
	s.roleScopes = policy
	if err := s.loginLimit.Validate(); err != nil {
		// The policy speaks of its fields; name the flags instead.
		return s, fmt.Errorf("login throttling (--login-max-failures, --login-failure-window, --login-max-per-address, --login-address-window): %w", err)
	}
	if s.signingKeyFile == "" {
		s.signingKeyFile = filepath.Join(s.dataDir, "signing-key.pem")
	}
	if s.databaseURL == "" {
		s.databaseURL = "sqlite:" + filepath.Join(s.dataDir, "authsvc.db")
	}
	if (subcommand == "grant-role" || subcommand == "unlock") && s.grantEmail == "" {
		return s, errors.New(subcommand + " needs --email")
	}
	s.tracing.Service = "authsvc"
	return s, s.validate(maxConns)
}

func (s settings) validate(maxConns int) error {
	if err := config.CheckListenAddrs(s.grpcAddr, s.httpAddr); err != nil {
		return err
	}
	switch {
	case s.dataDir == "":
		return errors.New("--data-dir must not be empty")
	case s.tokenTTL < time.Second || s.tokenTTL > account.MaxAccessTTL:
		return fmt.Errorf("--token-ttl must be between 1s and %s, got %s", account.MaxAccessTTL, s.tokenTTL)
	case strings.TrimSpace(s.issuer) == "" || strings.TrimSpace(s.audience) == "":
		return errors.New("--issuer and --audience must not be empty")
	case s.bcryptCost < minBcryptCost || s.bcryptCost > maxBcryptCost:
		return fmt.Errorf("--bcrypt-cost must be between %d and %d, got %d", minBcryptCost, maxBcryptCost, s.bcryptCost)
	case s.bcryptPool.workers < 1 || s.bcryptPool.queue < 0:
		return fmt.Errorf("--bcrypt-workers must be at least 1 and --bcrypt-queue not negative, got %d and %d", s.bcryptPool.workers, s.bcryptPool.queue)
	case maxConns < 1 || maxConns > 1000:
		return fmt.Errorf("--db-max-conns must be between 1 and 1000, got %d", maxConns)
	case s.db.ConnectTimeout <= 0 || s.db.StatementTimeout <= 0 || s.dbWait < 0:
		return errors.New("--db-connect-timeout and --db-statement-timeout must be positive, --db-wait not negative")
	case s.tokenTTL > s.sessions.Idle:
		return fmt.Errorf("--token-ttl (%s) must not exceed --session-idle-timeout (%s): access tokens would outlive their sessions", s.tokenTTL, s.sessions.Idle)
	case s.sessions.Idle < time.Minute || s.sessions.Absolute < s.sessions.Idle:
		return fmt.Errorf("--session-idle-timeout must be at least 1m and at most --session-max-lifetime, got %s and %s", s.sessions.Idle, s.sessions.Absolute)
	case s.keyReload < 100*time.Millisecond:
		return fmt.Errorf("--key-reload must be at least 100ms, got %s", s.keyReload)
	case s.activationDelay < 0:
		return fmt.Errorf("--activation-delay must not be negative, got %s", s.activationDelay)
	case s.auditRetention != 0 && s.auditRetention < 24*time.Hour:
		return fmt.Errorf("--audit-retention must be 0 (keep everything) or at least 24h, got %s", s.auditRetention)
	}
	if _, err := s.tls.Config(); err != nil {
		return err
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
