package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/certtest"
	"github.com/mlgate/mlgate/internal/tlsconfig"
)

func dialTLS(t *testing.T, addr string, c tlsconfig.Client) *grpc.ClientConn {
	t.Helper()
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Everything over TLS: authsvc requires client certificates on gRPC (mutual
// TLS) and serves its JWKS over HTTPS; predictsvc fetches keys over HTTPS and
// reads the revocation feed with its own client certificate; users reach
// predictsvc over TLS.
func TestTLSEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	grpcurl := needTool(t, "grpcurl", filepath.Join(repoRoot(t), "bin", "tools"))
	ca := certtest.NewCA(t)
	authCert, authKey := ca.Issue(t, "authsvc")
	predictCert, predictKey := ca.Issue(t, "predictsvc")
	clientCert, clientKey := ca.Issue(t, "client")
	authBin, predictBin := buildBinaries(t)
	authAddr, authHTTP, predictAddr := freeAddr(t), freeAddr(t), freeAddr(t)

	auth := start(t, "authsvc", authBin, "--grpc-addr", authAddr, "--http-addr", authHTTP, "--data-dir", t.TempDir(), "--bcrypt-cost", "10",
		"--tls-cert", authCert, "--tls-key", authKey, "--tls-client-ca", ca.CAFile)
	withCert := tlsconfig.Client{CA: ca.CAFile, Cert: clientCert, Key: clientKey}
	authConn := dialTLS(t, authAddr, withCert)
	waitServing(t, authConn, auth)
	predict := start(t, "predictsvc", predictBin, "--grpc-addr", predictAddr, "--http-addr", freeAddr(t),
		"--tls-cert", predictCert, "--tls-key", predictKey,
		"--jwks-url", "https://"+authHTTP+"/.well-known/jwks.json", "--auth-addr", authAddr,
		"--auth-ca", ca.CAFile, "--auth-client-cert", predictCert, "--auth-client-key", predictKey)
	predictConn := dialTLS(t, predictAddr, tlsconfig.Client{CA: ca.CAFile})
	waitServing(t, predictConn, predict)

	ctx := context.Background()
	client := authv1.NewAuthServiceClient(authConn)
	if _, err := client.Register(ctx, &authv1.RegisterRequest{Email: "tls@example.com", Password: "tls password"}); err != nil {
		t.Fatal(err)
	}
	login, err := client.Login(ctx, &authv1.LoginRequest{Email: "tls@example.com", Password: "tls password"})
	if err != nil {
		t.Fatal(err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	resp, err := predictionv1.NewPredictionServiceClient(predictConn).Predict(authed, &predictionv1.PredictRequest{
		Model: "iris", Instances: []*predictionv1.Instance{{Features: irisSamples[0].features}},
	})
	if err != nil || resp.GetPredictions()[0].GetLabel() != "setosa" {
		t.Fatalf("Predict over TLS = %v, %v", resp, err)
	}

	// Without a client certificate authsvc's gRPC port refuses the handshake.
	noCert := dialTLS(t, authAddr, tlsconfig.Client{CA: ca.CAFile})
	if _, err := healthpb.NewHealthClient(noCert).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("authsvc accepted a TLS client without a certificate")
	}
	// A plaintext client gets nowhere either.
	if _, err := healthpb.NewHealthClient(dial(t, predictAddr)).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("predictsvc answered a plaintext client")
	}
	// grpcurl with the CA and a client certificate, as the README shows.
	out, err := exec.Command(grpcurl, "-cacert", ca.CAFile, "-cert", clientCert, "-key", clientKey,
		authAddr, "grpc.health.v1.Health/Check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SERVING") {
		t.Fatalf("grpcurl over mTLS: %v\n%s", err, out)
	}
}
