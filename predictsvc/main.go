// Command predictsvc serves model predictions to callers holding an access
// token from authsvc. main only reads configuration and wires dependencies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/logging"
	"github.com/mlgate/mlgate/internal/metrics"
	"github.com/mlgate/mlgate/internal/serve"
	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/internal/tracing"
	"github.com/mlgate/mlgate/models"
	"github.com/mlgate/mlgate/predictsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/predictsvc/internal/keysource"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/batcher"
	"github.com/mlgate/mlgate/predictsvc/internal/model/onnxmodel"
	"github.com/mlgate/mlgate/predictsvc/internal/modelmetrics"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
	"github.com/mlgate/mlgate/predictsvc/internal/revocation"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "predictsvc:", err)
		os.Exit(2)
	}
}

const usage = `usage: predictsvc [flags]                 serve (see --help)
       predictsvc probe [flags]           exit 0 if the service at --http-addr is ready
       predictsvc check-config [flags]    validate the settings (flags and PREDICTSVC_* variables) and exit
       predictsvc config-reference        print every setting as a Markdown table`

func run(ctx context.Context, args []string) error {
	subcommand := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		subcommand, args = args[0], args[1:]
	}
	cfg, err := parseSettings(subcommand, args, os.Environ(), os.Stderr)
	if err != nil {
		return err
	}
	switch subcommand {
	case "serve", "config-reference":
	case "probe":
		return serve.Probe(cfg.httpAddr, cfg.tls.Enabled())
	case "check-config":
		// The models too: a bad model directory is the likeliest reason
		// for a start to fail.
		if _, err := loadModels(cfg.modelDir, cfg.mergeRows, modelmetrics.New(metrics.New("predictsvc"))); err != nil {
			return err
		}
		fmt.Println("predictsvc: configuration is valid")
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q\n%s", subcommand, usage)
	}
	log, err := logging.New(os.Stderr, "predictsvc", cfg.logLevel)
	if err != nil {
		return err
	}
	tr, err := tracing.New(ctx, cfg.tracing)
	if err != nil {
		return err
	}
	defer tr.Shutdown(context.WithoutCancel(ctx))
	reg := metrics.New("predictsvc")
	verifications := reg.NewCounter("mlgate_token_verifications_total", "Access-token checks by outcome (ok, or why the token was refused).", "outcome")
	catalog, err := loadModels(cfg.modelDir, cfg.mergeRows, modelmetrics.New(reg))
	if err != nil {
		return err
	}
	predictor, err := prediction.NewService(catalog, cfg.maxBatch)
	if err != nil {
		return err
	}

	var (
		keys       token.KeyLookup
		keysLoaded <-chan struct{}
	)
	if cfg.jwksFile != "" {
		static, err := keysource.LoadFile(cfg.jwksFile)
		if err != nil {
			return fmt.Errorf("--jwks-file: %w", err)
		}
		keys = static
		keysLoaded = closedChan()
	} else {
		clientTLS, err := cfg.authTLS.Config()
		if err != nil {
			return err
		}
		remote, err := keysource.NewRemote(keysource.RemoteConfig{
			URL:         cfg.jwksURL,
			Client:      &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS, Proxy: http.ProxyFromEnvironment}},
			Refresh:     cfg.jwksRefresh,
			MinInterval: 10 * time.Second,
			Logger:      log,
		})
		if err != nil {
			return err
		}
		keys, keysLoaded = remote, remote.Loaded()
		go remote.Run(ctx)
	}
	var (
		revocations token.RevocationList
		synced      = closedChan()
		follower    *revocation.Follower
	)
	if cfg.authAddr != "" {
		creds := insecure.NewCredentials()
		if cfg.feedOverTLS() {
			clientTLS, err := cfg.authTLS.Config()
			if err != nil {
				return err
			}
			creds = credentials.NewTLS(clientTLS)
		}
		conn, err := grpc.NewClient(cfg.authAddr, grpc.WithTransportCredentials(creds),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
			// Reconnect soon after authsvc (re)starts: gRPC's default backoff
			// starts at 1 s, which start-up would otherwise wait out.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
				MinConnectTimeout: 5 * time.Second,
			}),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcserver.MaxSendMsgBytes)),
			grpc.WithStatsHandler(tr.ClientHandler()))
		if err != nil {
			return fmt.Errorf("--auth-addr: %w", err)
		}
		defer conn.Close()
		follower, err = revocation.New(revocation.Config{
			Feed: authv1.NewAuthServiceClient(conn), Poll: cfg.revocationPoll, MaxStale: cfg.revocationMaxAge, Logger: log, Now: time.Now,
		})
		if err != nil {
			return err
		}
		go follower.Run(ctx)
		revocations, synced = follower, follower.Synced()
	} else {
		log.Warn("--auth-addr is empty: revocation checks are off, logged-out tokens work until they expire")
	}
	verifier, err := token.NewVerifier(token.VerifierConfig{Issuer: cfg.issuer, Audience: cfg.audience, Leeway: cfg.leeway}, keys, revocations)
	if err != nil {
		return err
	}

	tlsCfg, err := cfg.tls.Config()
	if err != nil {
		return err
	}
	grpcSrv, health := grpcserver.New(grpcserver.Config{
		Logger: log, Authenticate: grpcserver.BearerAuth(verifier, func(o string) { verifications.Inc(o) }),
		RequiredScopes: grpcapi.RequiredScopes, TLS: tlsCfg, Metrics: reg.GRPC, Stats: tr.ServerHandler(),
		// Room for the largest batch, so that it reaches the handler and its
		// clear batch-size check.
		MaxRequestElements: max(grpcserver.DefaultMaxRequestElements, cfg.maxBatch+64),
	})
	predictionv1.RegisterPredictionServiceServer(grpcSrv, grpcapi.NewServer(predictor, log))
	reg.GRPC.InitializeMetrics(grpcSrv)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	services := []string{"", predictionv1.PredictionService_ServiceDesc.ServiceName}
	// SERVING only once tokens can be verified: until the first key set and
	// revocation list arrive every call would fail.
	go func() {
		for _, ready := range []<-chan struct{}{keysLoaded, synced} {
			select {
			case <-ready:
			case <-ctx.Done():
				return
			}
		}
		for _, name := range services {
			health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
		log.Info("signing keys and revocations loaded; serving")
		if follower != nil {
			serve.WatchDependency(ctx, log, health, services, "revocation feed", follower.Fresh, cfg.revocationPoll)
		}
	}()

	var names []string
	for _, info := range catalog.List() {
		names = append(names, info.Name+"@"+info.Version)
	}
	if u, err := url.Parse(cfg.jwksURL); cfg.jwksFile == "" && err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		log.Warn("--jwks-url is plain HTTP to another host: whoever sits on that network path can substitute signing keys; use https:// with --auth-ca", "jwks", keysource.Redact(cfg.jwksURL))
	}
	jwksSource := keysource.Redact(cfg.jwksURL)
	if cfg.jwksFile != "" {
		jwksSource = cfg.jwksFile
	}
	log.Info("predictsvc starting", "models", names, "jwks", jwksSource)
	return serve.Run(ctx, serve.Servers{
		Logger: log, GRPC: grpcSrv, GRPCAddr: cfg.grpcAddr, Health: health, HTTP: mux, HTTPAddr: cfg.httpAddr, TLS: tlsCfg,
	})
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// loadModels opens every model in dir, or the bundled ones when dir is empty,
// each reporting its runs to obs.
func loadModels(dir string, mergeRows int, obs *modelmetrics.Observer) (*model.Catalog, error) {
	var fsys fs.FS = models.Bundled()
	source := "the bundled models"
	if dir != "" {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("--model-dir %q is not a readable directory", dir)
		}
		fsys, source = os.DirFS(dir), "--model-dir "+dir
	}
	loaded, err := model.LoadDir(fsys, onnxmodel.Open)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", source, err)
	}
	if len(loaded) == 0 {
		return nil, fmt.Errorf("no models found in %q (want one subdirectory with metadata.json per model)", dir)
	}
	for i, m := range loaded {
		obs.Preset(m.Info())
		// Instrumented inside the batcher, so the metrics count real runs.
		loaded[i] = model.Instrument(m, obs)
		if mergeRows > 1 {
			loaded[i] = batcher.New(loaded[i], runtime.GOMAXPROCS(0), mergeRows)
		}
	}
	return model.NewCatalog(loaded...)
}
