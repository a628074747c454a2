package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
)

// collector is an OTLP trace receiver: what an OpenTelemetry Collector
// would get from the services.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []span
}

type span struct{ service, name, traceID, kind string }

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, span{service: service, name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()), kind: s.GetKind().String()})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) find(service, name, kind string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.spans {
		if s.service == service && s.name == name && s.kind == kind {
			out = append(out, s)
		}
	}
	return out
}

// With --otlp-endpoint set, both services export spans; predictsvc's calls
// to authsvc carry the trace context, so the two sides share trace ids; and
// log lines of traced calls carry the trace id.
func TestTracing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	col := &collector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	otlp := []string{"--otlp-endpoint", lis.Addr().String(), "--otlp-insecure"}

	authBin, predictBin := buildBinaries(t)
	authAddr, authHTTP, predictAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	auth := start(t, "authsvc", authBin, append([]string{"--grpc-addr", authAddr, "--http-addr", authHTTP, "--data-dir", t.TempDir(), "--bcrypt-cost", "10", "--log-level", "debug"}, otlp...)...)
	authConn := dial(t, authAddr)
	waitServing(t, authConn, auth)
	predict := start(t, "predictsvc", predictBin, append([]string{"--grpc-addr", predictAddr, "--http-addr", freeAddr(t),
		"--jwks-url", "http://" + authHTTP + "/.well-known/jwks.json", "--auth-addr", authAddr}, otlp...)...)
	predictConn := dial(t, predictAddr)
	waitServing(t, predictConn, predict)

	ctx := context.Background()
	client := authv1.NewAuthServiceClient(authConn)
	if _, err := client.Register(ctx, &authv1.RegisterRequest{Email: "trace@example.com", Password: "trace password"}); err != nil {
		t.Fatal(err)
	}
	login, err := client.Login(ctx, &authv1.LoginRequest{Email: "trace@example.com", Password: "trace password"})
	if err != nil {
		t.Fatal(err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	if _, err := predictionv1.NewPredictionServiceClient(predictConn).Predict(authed, &predictionv1.PredictRequest{
		Model: "iris", Instances: []*predictionv1.Instance{{Features: irisSamples[0].features}},
	}); err != nil {
		t.Fatal(err)
	}

	const feed = "auth.v1.AuthService/ListRevocations"
	deadline := time.Now().Add(15 * time.Second)
	for {
		predictSpans := col.find("predictsvc", "prediction.v1.PredictionService/Predict", "SPAN_KIND_SERVER")
		clientSpans := col.find("predictsvc", feed, "SPAN_KIND_CLIENT")
		serverSpans := col.find("authsvc", feed, "SPAN_KIND_SERVER")
		shared := false
		for _, c := range clientSpans {
			for _, s := range serverSpans {
				shared = shared || c.traceID == s.traceID
			}
		}
		if len(predictSpans) > 0 && shared && len(col.find("authsvc", "auth.v1.AuthService/Login", "SPAN_KIND_SERVER")) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans never arrived: %d Predict, %d feed client, %d feed server, shared trace %v", len(predictSpans), len(clientSpans), len(serverSpans), shared)
		}
		time.Sleep(100 * time.Millisecond)
	}
	login1 := col.find("authsvc", "auth.v1.AuthService/Login", "SPAN_KIND_SERVER")[0]
	if !strings.Contains(auth.logs.String(), `"trace_id":"`+login1.traceID+`"`) {
		t.Fatalf("authsvc's log lines lack the Login call's trace id %s", login1.traceID)
	}
}
