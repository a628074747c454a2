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
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/logging"
	"github.com/mlgate/mlgate/internal/metrics"
	"github.com/mlgate/mlgate/internal/serve"
	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/internal/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "authsvc:", err)
		os.Exit(2)
	}
}

// usage is printed for an unknown subcommand.
const usage = `usage: authsvc [flags]                          serve (see --help)
       authsvc migrate [flags]                  apply schema migrations and exit
       authsvc rotate-key [flags]               add a new signing key (see rotate-key --help)
       authsvc grant-role --email E [--role R]  give an account a role (the first admin)
       authsvc unlock --email E                 lift a login lock (failed-password throttling) now
       authsvc probe [flags]                    exit 0 if the service at --http-addr is ready
       authsvc check-config [flags]             validate the settings (flags and AUTHSVC_* variables) and exit
       authsvc config-reference                 print every setting as a Markdown table`

var subcommands = []string{"serve", "migrate", "rotate-key", "grant-role", "unlock", "probe", "check-config", "config-reference"}

// maxRequestBytes bounds an authsvc request message.
const maxRequestBytes = 64 << 10

func run(ctx context.Context, args []string) error {
	subcommand := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		subcommand, args = args[0], args[1:]
	}
	if !slices.Contains(subcommands, subcommand) {
		return fmt.Errorf("unknown subcommand %q\n%s", subcommand, usage)
	}
	cfg, err := parseSettings(subcommand, args, os.Environ(), os.Stderr)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "authsvc", cfg.logLevel)
	if err != nil {
		return err
	}
	switch subcommand {
	case "probe":
		return serve.Probe(cfg.httpAddr, cfg.tls.Enabled())
	case "check-config":
		fmt.Println("authsvc: configuration is valid")
		return nil
	case "serve":
	default:
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
	tr, err := tracing.New(ctx, cfg.tracing)
	if err != nil {
		return err
	}
	defer tr.Shutdown(context.WithoutCancel(ctx))
	reg := metrics.New("authsvc")
	events := reg.NewCounter("mlgate_auth_events_total", "Auth events by kind (register, login, refresh, refresh_reuse, logout, ...) and outcome (success, failure, throttled, denied).", "kind", "outcome")
	verifications := reg.NewCounter("mlgate_token_verifications_total", "Access-token checks by outcome (ok, or why the token was refused).", "outcome")
	presetAuthEvents(events)
	accounts, err := newAccounts(st, cfg, log, ring, limiter, func(kind, outcome string) { events.Inc(kind, outcome) })
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
		Logger: log, Authenticate: grpcserver.BearerAuth(verifier, func(o string) { verifications.Inc(o) }),
		PublicMethods: grpcapi.PublicMethods, TLS: tlsCfg, Metrics: reg.GRPC, Stats: tr.ServerHandler(),
		QuietMethods: []string{authv1.AuthService_ListRevocations_FullMethodName},
		// Every authsvc request is a few short strings (an email, a
		// password, a token), so a small bound costs nobody anything.
		MaxRecvMsgBytes: maxRequestBytes,
	})
	api := grpcapi.NewServer(accounts, ring, log)
	authv1.RegisterAuthServiceServer(grpcSrv, api)
	authv1.RegisterAdminServiceServer(grpcSrv, api)
	reg.GRPC.InitializeMetrics(grpcSrv)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	httpapi.Register(mux, ring)

	services := []string{"", authv1.AuthService_ServiceDesc.ServiceName, authv1.AdminService_ServiceDesc.ServiceName}
	for _, name := range services {
		health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	go serve.WatchDependency(ctx, log, health, services, "user store", st.Ping, 2*time.Second)
	go accounts.RunHousekeeping(ctx, time.Hour)
	log.Info("authsvc starting", "kid", ring.KeyID(), "store", describeStore(cfg), "bcrypt_cost", cfg.bcryptCost, "tls", tlsCfg != nil, "mtls", cfg.tls.ClientCA != "")
	return serve.Run(ctx, serve.Servers{
		Logger: log, GRPC: grpcSrv, GRPCAddr: cfg.grpcAddr, Health: health, HTTP: mux, HTTPAddr: cfg.httpAddr, TLS: tlsCfg,
	})
}

// presetAuthEvents makes the common series report 0 before the first event.
func presetAuthEvents(events metrics.Counter) {
	for _, ko := range [][2]string{
		{"register", "success"}, {"login", "success"}, {"login", "failure"}, {"login", "throttled"},
		{"refresh", "success"}, {"refresh_reuse", "denied"}, {"logout", "success"},
	} {
		events.Add(0, ko[0], ko[1])
	}
}

// newAccounts builds the domain service. signer and limiter may be nil for
// operator commands, which sign nothing and log nobody in; events may be nil.
func newAccounts(st *sqlstore.Store, cfg settings, log *slog.Logger, signer account.TokenSigner, limiter account.LoginThrottle, events func(kind, outcome string)) (*account.Service, error) {
	hasher, err := password.NewHasher(cfg.bcryptCost)
	if err != nil {
		return nil, err
	}
	pool, err := password.NewPool(hasher, cfg.bcryptPool.workers, cfg.bcryptPool.queue)
	if err != nil {
		return nil, err
	}
	return account.NewService(st, pool, signer, limiter, account.Config{
		Sessions: cfg.sessions, Roles: cfg.roleScopes, AccessTTL: cfg.tokenTTL, Events: events,
		AuditRetention: cfg.auditRetention, CounterRetention: cfg.loginLimit.Retention(),
	}, time.Now, log)
}
