package grpcserver_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/grpctest"
	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/internal/tokentest"
)

// probeService exercises the chain: GetModel echoes the verified subject,
// ListModels panics.
type probeService struct {
	predictionv1.UnimplementedPredictionServiceServer
}

func (probeService) GetModel(ctx context.Context, _ *predictionv1.GetModelRequest) (*predictionv1.GetModelResponse, error) {
	p, ok := token.FromContext(ctx)
	if !ok {
		return nil, nil
	}
	return &predictionv1.GetModelResponse{Model: &predictionv1.Model{Name: p.Subject}}, nil
}

func (probeService) ListModels(context.Context, *predictionv1.ListModelsRequest) (*predictionv1.ListModelsResponse, error) {
	var m map[string]int
	m["boom"]++ // a nil-map write: a real bug
	return nil, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func setup(t *testing.T) (predictionv1.PredictionServiceClient, healthpb.HealthClient, *tokentest.Issuer, *lockedBuffer) {
	iss := tokentest.NewIssuer(t)
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience, Leeway: 30 * time.Second}, iss)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	srv, _ := grpcserver.New(grpcserver.Config{
		Logger:       slog.New(slog.NewJSONHandler(logs, nil)),
		Authenticate: grpcserver.BearerAuth(v),
	})
	predictionv1.RegisterPredictionServiceServer(srv, probeService{})
	conn := grpctest.Dial(t, srv)
	return predictionv1.NewPredictionServiceClient(conn), healthpb.NewHealthClient(conn), iss, logs
}

func TestPrincipalReachesHandler(t *testing.T) {
	client, _, iss, _ := setup(t)
	resp, err := client.GetModel(grpctest.Bearer(context.Background(), iss.Valid(t, "user-7")), &predictionv1.GetModelRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetModel().GetName() != "user-7" {
		t.Fatalf("handler saw subject %q", resp.GetModel().GetName())
	}
}

// Authentication runs before any handler, including unimplemented ones.
func TestAuthRunsBeforeHandlers(t *testing.T) {
	client, _, _, _ := setup(t)
	_, err := client.Predict(context.Background(), &predictionv1.PredictRequest{})
	grpctest.WantCode(t, err, codes.Unauthenticated)
}

func TestPanicBecomesInternal(t *testing.T) {
	client, _, iss, logs := setup(t)
	_, err := client.ListModels(grpctest.Bearer(context.Background(), iss.Valid(t, "u")), &predictionv1.ListModelsRequest{})
	st := grpctest.WantCode(t, err, codes.Internal)
	if st.Message() != "internal error" {
		t.Fatalf("message %q leaks detail", st.Message())
	}
	if !strings.Contains(logs.String(), "panic in handler") || !strings.Contains(logs.String(), "assignment to entry in nil map") {
		t.Fatalf("panic not logged with its cause:\n%s", logs.String())
	}
	// The process keeps serving.
	if _, err := client.GetModel(grpctest.Bearer(context.Background(), iss.Valid(t, "u")), &predictionv1.GetModelRequest{}); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

type noKeysYet struct{}

func (noKeysYet) PublicKey(context.Context, string) (ed25519.PublicKey, error) {
	return nil, token.ErrKeysUnavailable
}

// Before the verifier has keys, a caller is told to retry, not that its
// token is bad.
func TestNoKeysYetIsUnavailable(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience}, noKeysYet{})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := grpcserver.New(grpcserver.Config{Logger: grpctest.DiscardLogger(), Authenticate: grpcserver.BearerAuth(v)})
	predictionv1.RegisterPredictionServiceServer(srv, probeService{})
	client := predictionv1.NewPredictionServiceClient(grpctest.Dial(t, srv))
	_, err = client.GetModel(grpctest.Bearer(context.Background(), iss.Valid(t, "u")), &predictionv1.GetModelRequest{})
	grpctest.WantCode(t, err, codes.Unavailable)
}

func TestHealthStartsNotServing(t *testing.T) {
	_, health, _, _ := setup(t)
	resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before the service says it is ready = %v, %v", resp, err)
	}
}

func TestIsPublicMatchesExactNames(t *testing.T) {
	for name, want := range map[string]bool{
		"grpc.health.v1.Health":                    true,
		"grpc.reflection.v1.ServerReflection":      true,
		"grpc.reflection.v1alpha.ServerReflection": true,
		"grpc.health.v1.HealthX":                   false,
		"grpc.health":                              false,
		"prediction.v1.PredictionService":          false,
		"":                                         false,
	} {
		if got := grpcserver.IsPublic(name); got != want {
			t.Errorf("IsPublic(%q) = %v, want %v", name, got, want)
		}
	}
}
