package grpcapi_test

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/grpctest"
	"github.com/mlgate/mlgate/internal/loadgen"
	"github.com/mlgate/mlgate/predictsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/modeltest"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
)

// BenchmarkAuthOverhead measures Predict through the real chain with full
// token verification against a benchmark-only wiring of the same handler
// without the auth interceptor (which never ships), 16 callers each, in
// alternating 100 ms slices within one process: each iteration is one pair.
// It reports the ratio of their calls as auth/noauth (the target is at
// least 0.95); `make bench` runs it with -test.benchtime=40x.
func BenchmarkAuthOverhead(b *testing.B) {
	catalog, _ := model.NewCatalog(modeltest.Bundled(b)...)
	predictor, _ := prediction.NewService(catalog, 1024)
	f := newFixture(b)
	noAuth, health := grpcserver.New(grpcserver.Config{Logger: grpctest.DiscardLogger()})
	health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	predictionv1.RegisterPredictionServiceServer(noAuth, grpcapi.NewServer(predictor, grpctest.DiscardLogger()))
	plain := predictionv1.NewPredictionServiceClient(grpctest.Dial(b, noAuth))
	req := &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, 1.4, 0.2})}
	// The same metadata goes to both, so only the server-side work differs.
	ctx := bearerCtx(f.token)
	wiring := func(client predictionv1.PredictionServiceClient) loadgen.Workload {
		return func(d time.Duration) int64 {
			return loadgen.Count(16, d, func() error {
				_, err := client.Predict(ctx, req)
				return err
			})
		}
	}
	b.ResetTimer()
	ratio := loadgen.Ratio(wiring(f.client), wiring(plain), 100*time.Millisecond, b.N)
	b.ReportMetric(ratio, "auth/noauth")
}

func bearerCtx(tok string) context.Context { return grpctest.Bearer(context.Background(), tok) }
