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
}

// maxTokenTTL keeps access tokens short-lived: until revocation exists, expiry
// is the only way a token stops working.
const maxTokenTTL = 24 * time.Hour

func parseSettings(args []string, lookupEnv func(string) (string, bool), output io.Writer) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("authsvc", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&s.grpcAddr, "grpc-addr", "localhost:50051", "gRPC listen address")
	fs.StringVar(&s.httpAddr, "http-addr", "localhost:8081", "HTTP listen address (JWKS at /.well-known/jwks.json, /healthz, /readyz)")
	fs.StringVar(&s.dataDir, "data-dir", "data", "directory for the SQLite store and the signing key")
	fs.StringVar(&s.databaseURL, "database-url", "", `user store: "sqlite:PATH" (default sqlite:DATA_DIR/authsvc.db)`)
	fs.StringVar(&s.signingKeyFile, "signing-key-file", "", "Ed25519 private key, PKCS #8 PEM, mode 0600; created if absent (default DATA_DIR/signing-key.pem)")
	fs.StringVar(&s.issuer, "issuer", "mlgate-authsvc", "iss claim of issued tokens")
	fs.StringVar(&s.audience, "audience", "mlgate", "aud claim of issued tokens")
	fs.DurationVar(&s.tokenTTL, "token-ttl", 15*time.Minute, "access token lifetime")
	fs.IntVar(&s.bcryptCost, "bcrypt-cost", password.DefaultCost, "bcrypt cost for new password hashes")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := config.Parse(fs, "authsvc", args, lookupEnv); err != nil {
		return s, err
	}
	if s.signingKeyFile == "" {
		s.signingKeyFile = filepath.Join(s.dataDir, "signing-key.pem")
	}
	if s.databaseURL == "" {
		s.databaseURL = "sqlite:" + filepath.Join(s.dataDir, "authsvc.db")
	}
	return s, s.validate()
}

func (s settings) validate() error {
	switch {
	case s.dataDir == "":
		return errors.New("--data-dir must not be empty")
	case s.tokenTTL <= 0 || s.tokenTTL > maxTokenTTL:
		return fmt.Errorf("--token-ttl must be between 1s and %s, got %s", maxTokenTTL, s.tokenTTL)
	case s.issuer == "" || s.audience == "":
		return errors.New("--issuer and --audience must not be empty")
	}
	_, err := s.sqlitePath()
	return err
}

// sqlitePath extracts the file path of a sqlite: database URL.
func (s settings) sqlitePath() (string, error) {
	switch {
	case strings.HasPrefix(s.databaseURL, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(s.databaseURL, "sqlite:"), "//")
		if path == "" {
			return "", errors.New(`--database-url "sqlite:" needs a file path, like sqlite:data/authsvc.db`)
		}
		return path, nil
	case strings.HasPrefix(s.databaseURL, "postgres://"), strings.HasPrefix(s.databaseURL, "postgresql://"):
		return "", errors.New("--database-url: PostgreSQL is not supported by this build yet; use sqlite:PATH")
	default:
		return "", fmt.Errorf(`--database-url must start with "sqlite:", got %q`, redactURL(s.databaseURL))
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
