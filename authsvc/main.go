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
	"syscall"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mlgate/mlgate/authsvc/internal/account"
	"github.com/mlgate/mlgate/authsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/authsvc/internal/httpapi"
	"github.com/mlgate/mlgate/authsvc/internal/password"
	"github.com/mlgate/mlgate/authsvc/internal/signing"
	"github.com/mlgate/mlgate/authsvc/internal/sqlitestore"
	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
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
		fmt.Fprintln(os.Stderr, "authsvc:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseSettings(args, os.LookupEnv, os.Stderr)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.logLevel)
	if err != nil {
		return err
	}
	dbPath, _ := cfg.sqlitePath()
	store, err := sqlitestore.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	key, err := signing.LoadOrCreateKey(cfg.signingKeyFile)
	if err != nil {
		return err
	}
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

	health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	health.SetServingStatus(authv1.AuthService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	log.Info("authsvc starting", "kid", signer.KeyID(), "store", "sqlite", "bcrypt_cost", cfg.bcryptCost)
	return serve.Run(ctx, serve.Servers{
		Logger: log, GRPC: grpcSrv, GRPCAddr: cfg.grpcAddr, Health: health, HTTP: mux, HTTPAddr: cfg.httpAddr,
	})
}
