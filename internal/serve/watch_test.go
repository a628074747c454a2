package serve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestWatchDependencyFollowsPing(t *testing.T) {
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	var down atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go WatchDependency(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), h, []string{"", "svc"}, "db",
		func(context.Context) error {
			if down.Load() {
				return errors.New("connection refused")
			}
			return nil
		}, 5*time.Millisecond)

	waitFor := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			a, _ := h.Check(ctx, &healthpb.HealthCheckRequest{})
			b, _ := h.Check(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
			if a.GetStatus() == want && b.GetStatus() == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("health never became %s", want)
	}
	down.Store(true)
	waitFor(healthpb.HealthCheckResponse_NOT_SERVING)
	down.Store(false)
	waitFor(healthpb.HealthCheckResponse_SERVING)
}
