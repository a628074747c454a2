// Package serve runs a service's gRPC and HTTP servers and owns their shutdown.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// ShutdownTimeout is how long in-flight calls get to finish after a signal.
const ShutdownTimeout = 10 * time.Second

// Servers are what one service runs.
type Servers struct {
	Logger   *slog.Logger
	GRPC     *grpc.Server
	GRPCAddr string
	Health   *health.Server
	// HTTP carries the service's own endpoints; Run adds /healthz and /readyz.
	HTTP     *http.ServeMux
	HTTPAddr string
	// TLS, when set, serves HTTP over TLS. (Client certificates are not asked
	// for here: JWKS and probes must stay reachable for proxies and kubelets.)
	TLS *tls.Config
}

// Run listens, serves until ctx ends, then drains: health goes NOT_SERVING,
// HTTP shuts down, and gRPC stops gracefully (forcibly after ShutdownTimeout).
func Run(ctx context.Context, s Servers) error {
	grpcLis, err := listen(s.GRPCAddr, "--grpc-addr")
	if err != nil {
		return err
	}
	httpLis, err := listen(s.HTTPAddr, "--http-addr")
	if err != nil {
		grpcLis.Close()
		return err
	}
	s.HTTP.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	s.HTTP.Handle("GET /readyz", readyHandler(s.Health))
	httpSrv := &http.Server{
		Handler:           s.HTTP,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.Logger.Info("listening", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String())
	if s.TLS == nil && (!isLoopback(grpcLis.Addr()) || !isLoopback(httpLis.Addr())) {
		// Allowed (a mesh sidecar may add TLS), but worth a line in the log.
		s.Logger.Warn("serving plaintext beyond loopback: passwords and tokens cross the network unencrypted unless something in front adds TLS (--tls-cert, --tls-key)")
	}

	errc := make(chan error, 2)
	go func() { errc <- s.GRPC.Serve(grpcLis) }()
	go func() {
		if s.TLS != nil {
			httpSrv.TLSConfig = &tls.Config{Certificates: s.TLS.Certificates, MinVersion: tls.VersionTLS12}
			errc <- httpSrv.ServeTLS(httpLis, "", "")
			return
		}
		errc <- httpSrv.Serve(httpLis)
	}()

	var runErr error
	select {
	case <-ctx.Done():
		s.Logger.Info("shutting down")
	case runErr = <-errc:
		s.Logger.Error("server failed", "err", runErr)
	}
	s.Health.Shutdown()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.Logger.Warn("http shutdown", "err", err)
	}
	stopped := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		s.Logger.Warn("in-flight calls did not finish in time; stopping")
		s.GRPC.Stop()
	}
	return runErr
}

// readyHandler answers 200 while the overall gRPC health status is SERVING,
// so the HTTP probe and grpc.health.v1 never disagree.
func readyHandler(h *health.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := h.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
}

// listen binds addr, naming the setting to change when it is taken.
func listen(addr, flag string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w: another process (another instance?) holds %s; stop it or choose another %s", err, addr, flag)
	}
	return lis, err
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
