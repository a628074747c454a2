package serve

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// WatchDependency pings a dependency (a database, a model backend) every
// interval and mirrors the answer into the health of services: NOT_SERVING
// while the ping fails, SERVING again as soon as it answers, without a restart.
// It returns when ctx ends.
func WatchDependency(ctx context.Context, log *slog.Logger, h *health.Server, services []string, name string, ping func(context.Context) error, interval time.Duration) {
	serving := true
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pingCtx, cancel := context.WithTimeout(ctx, interval)
		err := ping(pingCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && serving:
			log.Warn(name+" unreachable; reporting NOT_SERVING", "err", err)
		case err == nil && !serving:
			log.Info(name + " reachable again; reporting SERVING")
		default:
			continue
		}
		serving = err == nil
		status := healthpb.HealthCheckResponse_SERVING
		if !serving {
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, s := range services {
			h.SetServingStatus(s, status)
		}
	}
}
