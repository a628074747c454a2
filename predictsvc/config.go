package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/tlsconfig"
	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/internal/tracing"
	"github.com/mlgate/mlgate/predictsvc/internal/keysource"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
)

// maxMaxBatch bounds --max-batch and --merge-rows: a batch must fit in one
// request message (4 MiB holds 65536 rows of 16 features at most).
const maxMaxBatch = 65536

type settings struct {
	grpcAddr    string
	httpAddr    string
	jwksURL     string
	jwksFile    string
	jwksRefresh time.Duration
	issuer      string
	audience    string
	leeway      time.Duration
	modelDir    string
	maxBatch    int
	mergeRows   int
	logLevel    string

	tracing          tracing.Config
	tls              tlsconfig.Server
	authTLS          tlsconfig.Client
	authAddr         string
	revocationPoll   time.Duration
	revocationMaxAge time.Duration
}

func parseSettings(subcommand string, args []string, environ []string, output io.Writer) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("predictsvc", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&s.grpcAddr, "grpc-addr", "localhost:50052", "gRPC listen address")
	fs.StringVar(&s.httpAddr, "http-addr", "localhost:8082", "HTTP listen address (/healthz, /readyz, /metrics)")
	fs.StringVar(&s.jwksURL, "jwks-url", "http://localhost:8081/.well-known/jwks.json", "authsvc's JWK Set, fetched at start and kept fresh")
	fs.StringVar(&s.jwksFile, "jwks-file", "", "read the JWK Set from this file instead of --jwks-url")
	fs.DurationVar(&s.jwksRefresh, "jwks-refresh", time.Minute, "how often the JWK Set is refetched from --jwks-url (keep it below authsvc rotate-key's --activation-delay)")
	fs.StringVar(&s.issuer, "issuer", "mlgate-authsvc", "required iss claim")
	fs.StringVar(&s.audience, "audience", "mlgate", "required aud claim")
	fs.DurationVar(&s.leeway, "leeway", 30*time.Second, "clock skew tolerated on exp and iat (at most 60s)")
	fs.StringVar(&s.modelDir, "model-dir", "", "directory of models (one subdirectory with metadata.json each); empty serves the bundled models")
	fs.IntVar(&s.maxBatch, "max-batch", prediction.DefaultMaxBatch, "most instances in one Predict request")
	fs.IntVar(&s.mergeRows, "merge-rows", 64, "concurrent Predict calls on one model run together, up to this many instances per run; 1 runs every call alone")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	s.tls.RegisterFlags(fs)
	fs.StringVar(&s.tracing.Endpoint, "otlp-endpoint", "", "OpenTelemetry collector (host:port, OTLP/gRPC) to export traces to; empty exports none")
	fs.BoolVar(&s.tracing.Insecure, "otlp-insecure", false, "send traces to --otlp-endpoint without TLS (a local agent)")
	fs.StringVar(&s.authTLS.CA, "auth-ca", "", "PEM CA bundle that verifies authsvc (HTTPS --jwks-url and the revocation feed); setting it, or --auth-client-cert, reads the feed over TLS")
	fs.StringVar(&s.authTLS.Cert, "auth-client-cert", "", "PEM client certificate predictsvc presents to authsvc's gRPC port (mutual TLS)")
	fs.StringVar(&s.authTLS.Key, "auth-client-key", "", "PEM key of --auth-client-cert (mode 0600)")
	fs.StringVar(&s.authAddr, "auth-addr", "localhost:50051", "authsvc's gRPC address, for the revocation feed; empty turns revocation checks off (tokens then live until they expire)")
	fs.DurationVar(&s.revocationPoll, "revocation-poll", time.Second, "how often the revocation feed is read: the most a logged-out token keeps working")
	fs.DurationVar(&s.revocationMaxAge, "revocation-max-staleness", time.Minute, "with the feed unreadable this long, refuse every token (UNAVAILABLE) rather than accept revoked ones")
	if subcommand == "config-reference" {
		config.Reference(os.Stdout, fs, "predictsvc")
		return s, flag.ErrHelp
	}
	if err := config.Parse(fs, "predictsvc", args, environ, usage); err != nil {
		return s, err
	}
	s.tracing.Service = "predictsvc"
	return s, s.validate()
}

// feedOverTLS: the revocation feed uses TLS once any authsvc TLS setting is
// given or the JWKS comes over HTTPS (authsvc serves both from one certificate).
func (s settings) feedOverTLS() bool {
	return s.authTLS.CA != "" || s.authTLS.Cert != "" || strings.HasPrefix(s.jwksURL, "https://")
}

func (s settings) validate() error {
	if err := config.CheckListenAddrs(s.grpcAddr, s.httpAddr); err != nil {
		return err
	}
	switch {
	case s.leeway < 0 || s.leeway > token.MaxLeeway:
		return fmt.Errorf("--leeway must be between 0s and %s, got %s", token.MaxLeeway, s.leeway)
	case s.issuer == "" || s.audience == "":
		return errors.New("--issuer and --audience must not be empty")
	case s.maxBatch < 1 || s.maxBatch > maxMaxBatch:
		return fmt.Errorf("--max-batch must be 1 to %d, got %d", maxMaxBatch, s.maxBatch)
	case s.mergeRows < 1 || s.mergeRows > maxMaxBatch:
		return fmt.Errorf("--merge-rows must be 1 to %d, got %d", maxMaxBatch, s.mergeRows)
	case s.jwksRefresh < time.Second:
		return fmt.Errorf("--jwks-refresh must be at least 1s, got %s", s.jwksRefresh)
	case s.authAddr != "" && (s.revocationPoll < 100*time.Millisecond || s.revocationPoll > 5*time.Second):
		return fmt.Errorf("--revocation-poll must be between 100ms and 5s, got %s", s.revocationPoll)
	case s.authAddr != "" && s.revocationMaxAge < 2*s.revocationPoll:
		return fmt.Errorf("--revocation-max-staleness must be at least twice --revocation-poll, got %s", s.revocationMaxAge)
	}
	if _, err := s.tls.Config(); err != nil {
		return err
	}
	if _, err := s.authTLS.Config(); err != nil {
		return fmt.Errorf("--auth-ca/--auth-client-cert/--auth-client-key: %w", err)
	}
	if s.jwksFile != "" {
		return nil
	}
	if s.authTLS.CA != "" && strings.HasPrefix(s.jwksURL, "http://") {
		return errors.New("--auth-ca is set but --jwks-url is plain http://: use the https:// URL of authsvc's HTTP port")
	}
	u, err := url.Parse(s.jwksURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--jwks-url must be an http:// or https:// URL, got %q", keysource.Redact(s.jwksURL))
	}
	return nil
}
