// Command authsvc registers users, checks passwords, keeps sessions and signs
// access tokens. main only reads configuration and wires dependencies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/authsvc/internal/httpapi"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	"github.com/mlgate/mlgate/authsvc/internal/sqlstore"
	"github.com/mlgate/mlgate/authsvc/internal/throttle"
	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/logging"
	"github.com/mlgate/mlgate/internal/serve"
	"github.com/mlgate/mlgate/internal/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if !errors.Is(err, config.ErrUsage) {
			fmt.Fprintln(os.Stderr, "authsvc:", err)
		}
		os.Exit(2)
	}
}

// usage is printed for an unknown subcommand.
const usage = `usage: authsvc [flags]                          serve (see --help)
       authsvc migrate [flags]                  apply schema migrations and exit
       authsvc rotate-key [flags]               add a new signing key (see rotate-key --help)
       authsvc grant-role --email E [--role R]  give an account a role (the first admin)`

var subcommands = []string{"serve", "migrate", "rotate-key", "grant-role"}

func run(ctx context.Context, args []string) error {
	subcommand := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		subcommand, args = args[0], args[1:]
	}
	if !slices.Contains(subcommands, subcommand) {
		return fmt.Errorf("unknown subcommand %q\n%s", subcommand, usage)
	}
	cfg, err := parseSettings(subcommand, args, os.LookupEnv, os.Stderr)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "authsvc", cfg.logLevel)
	if err != nil {
		return err
	}
	if subcommand != "serve" {
		return operatorCommand(ctx, subcommand, cfg, log)
	}

	st, err := openStore(ctx, cfg, log, cfg.autoMigrate)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := ensureSigningKey(ctx, st, cfg); err != nil {
		return err
	}
	ring, err := signing.NewRing(ctx, st, signing.Config{Issuer: cfg.issuer, Audience: cfg.audience, TTL: cfg.tokenTTL}, time.Now)
	if err != nil {
		return err
	}
	go ring.Run(ctx, cfg.keyReload, log)
	limiter, err := throttle.New(st, cfg.loginLimit, time.Now)
	if err != nil {
		return err
	}
	accounts, err := newAccounts(st, cfg, log, ring, limiter)
	if err != nil {
		return err
	}
	// authsvc verifies its own tokens for LogoutAll, ChangePassword and the
	// admin calls, checking sessions in the store itself.
	verifier, err := token.NewVerifier(token.VerifierConfig{Issuer: cfg.issuer, Audience: cfg.audience, Leeway: 30 * time.Second}, ring, accounts)
	if err != nil {
		return err
	}

	tlsCfg, err := cfg.tls.Config()
	if err != nil {
		return err
	}
	grpcSrv, health := grpcserver.New(grpcserver.Config{
		Logger: log, Authenticate: grpcserver.BearerAuth(verifier), PublicMethods: grpcapi.PublicMethods, TLS: tlsCfg,
	})
	api := grpcapi.NewServer(accounts, ring, log)
	authv1.RegisterAuthServiceServer(grpcSrv, api)
	authv1.RegisterAdminServiceServer(grpcSrv, api)
	mux := http.NewServeMux()
	httpapi.Register(mux, ring)

	services := []string{"", authv1.AuthService_ServiceDesc.ServiceName, authv1.AdminService_ServiceDesc.ServiceName}
	for _, name := range services {
		health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	go serve.WatchDependency(ctx, log, health, services, "user store", st.Ping, 2*time.Second)
	kind, _, _ := cfg.store()
	log.Info("authsvc starting", "kid", ring.KeyID(), "store", [...]string{"sqlite", "postgres"}[kind], "bcrypt_cost", cfg.bcryptCost, "tls", tlsCfg != nil, "mtls", cfg.tls.ClientCA != "")
	return serve.Run(ctx, serve.Servers{
		Logger: log, GRPC: grpcSrv, GRPCAddr: cfg.grpcAddr, Health: health, HTTP: mux, HTTPAddr: cfg.httpAddr, TLS: tlsCfg,
	})
}

// newAccounts builds the domain service. signer and limiter may be nil for
// operator commands, which sign nothing and log nobody in.
func newAccounts(st *sqlstore.Store, cfg settings, log *slog.Logger, signer account.TokenSigner, limiter account.LoginThrottle) (*account.Service, error) {
	hasher, err := password.NewHasher(cfg.bcryptCost)
	if err != nil {
		return nil, err
	}
	pool, err := password.NewPool(hasher, cfg.bcryptPool.workers, cfg.bcryptPool.queue)
	if err != nil {
		return nil, err
	}
	return account.NewService(st, pool, signer, limiter, account.Config{
		Sessions: cfg.sessions, Roles: cfg.roleScopes, AccessTTL: cfg.tokenTTL,
	}, time.Now, log)
}
