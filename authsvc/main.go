// Command authsvc registers users, checks passwords and signs access tokens.
// main only reads configuration and wires dependencies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/authsvc/internal/httpapi"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/logging"
	"github.com/mlgate/mlgate/internal/serve"
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
const usage = `usage: authsvc [flags]            serve (see --help)
       authsvc migrate [flags]    apply schema migrations and exit`

func run(ctx context.Context, args []string) error {
	subcommand := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		subcommand, args = args[0], args[1:]
	}
	if subcommand != "serve" && subcommand != "migrate" {
		return fmt.Errorf("unknown subcommand %q\n%s", subcommand, usage)
	}
	cfg, err := parseSettings(args, os.LookupEnv, os.Stderr)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "authsvc", cfg.logLevel)
	if err != nil {
		return err
	}
	if subcommand == "migrate" {
		return migrate(ctx, cfg, log)
	}
	store, key, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	signer, err := signing.NewSigner(key, signing.Config{Issuer: cfg.issuer, Audience: cfg.audience, TTL: cfg.tokenTTL}, time.Now)
	if err != nil {
		return err
	}
	hasher, err := password.NewHasher(cfg.bcryptCost)
	if err != nil {
		return err
	}
	accounts := account.NewService(store, hasher, signer, time.Now)

	grpcSrv, health := grpcserver.New(grpcserver.Config{Logger: log})
	authv1.RegisterAuthServiceServer(grpcSrv, grpcapi.NewServer(accounts, signer, log))
	mux := http.NewServeMux()
	httpapi.Register(mux, signer)

	services := []string{"", authv1.AuthService_ServiceDesc.ServiceName}
	for _, name := range services {
		health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	go serve.WatchDependency(ctx, log, health, services, "user store", store.Ping, 2*time.Second)
	kind, _, _ := cfg.store()
	log.Info("authsvc starting", "kid", signer.KeyID(), "store", [...]string{"sqlite", "postgres"}[kind], "bcrypt_cost", cfg.bcryptCost)
	return serve.Run(ctx, serve.Servers{
		Logger: log, GRPC: grpcSrv, GRPCAddr: cfg.grpcAddr, Health: health, HTTP: mux, HTTPAddr: cfg.httpAddr,
	})
}
