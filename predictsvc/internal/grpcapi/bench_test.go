package grpcapi_test

import (
	"context"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/grpctest"
	"github.com/mlgate/mlgate/predictsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/modeltest"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
)

// BenchmarkPredictChain measures Predict through the real chain with full
// token verification against a benchmark-only wiring of the same handler
// without the auth interceptor (which never ships): their ratio is what
// authentication costs per call. 16 concurrent callers, as in `make bench`.
func BenchmarkPredictChain(b *testing.B) {
	catalog, _ := model.NewCatalog(modeltest.Bundled(b)...)
	predictor, _ := prediction.NewService(catalog, 1024)
	f := newFixture(b)
	noAuth, health := grpcserver.New(grpcserver.Config{Logger: grpctest.DiscardLogger()})
	health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	predictionv1.RegisterPredictionServiceServer(noAuth, grpcapi.NewServer(predictor, grpctest.DiscardLogger()))
	plain := predictionv1.NewPredictionServiceClient(grpctest.Dial(b, noAuth))
	req := &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, 1.4, 0.2})}

	run := func(b *testing.B, client predictionv1.PredictionServiceClient, ctx context.Context) {
		b.SetParallelism(8) // 16 goroutines on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.Predict(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("auth", func(b *testing.B) { run(b, f.client, bearerCtx(f.token)) })
	// The same metadata goes to both, so only the server-side work differs.
	b.Run("noauth", func(b *testing.B) { run(b, plain, bearerCtx(f.token)) })
}

func bearerCtx(tok string) context.Context { return grpctest.Bearer(context.Background(), tok) }
