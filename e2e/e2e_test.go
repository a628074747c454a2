// Package e2e starts the real authsvc and predictsvc binaries on loopback ports
// and drives them through the generated Go client, grpcurl and the Python
// client, as users do.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/syncbuf"
)

// canaryPassword must never appear in a log line (case A9).
const canaryPassword = "e2e-canary-password-5d1c"

var irisSamples = []struct {
	features []float32
	label    string
}{
	{[]float32{5.1, 3.5, 1.4, 0.2}, "setosa"},
	{[]float32{6.4, 3.2, 4.5, 1.5}, "versicolor"},
	{[]float32{6.3, 3.3, 6.0, 2.5}, "virginica"},
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// needTool finds an external program; missing, it skips the test — except
// under CI, where every part must run.
func needTool(t *testing.T, name string, extraDirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range extraDirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; .ci/run must install it", name)
	}
	t.Skipf("SKIPPED: %s is not installed (run `make tools` or .ci/run); CI runs this", name)
	return ""
}

func isExecutable(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode()&0o111 != 0
}

func buildBinaries(t *testing.T) (authBin, predictBin string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"authsvc", "predictsvc"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	return filepath.Join(dir, "authsvc"), filepath.Join(dir, "predictsvc")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type process struct {
	name string
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan error
}

func start(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), logs: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and expects a clean exit within the shutdown window.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM", p.name, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not exit within 15s of SIGTERM", p.name)
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func waitServing(t *testing.T, conn *grpc.ClientConn, p *process) {
	t.Helper()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("%s exited early: %v\n%s", p.name, err, p.logs.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never reported SERVING\n%s", p.name, p.logs.String())
}

type stack struct {
	// owner is the top-level test: processes live until it ends, not just
	// the subtest that started them.
	owner                                        *testing.T
	authAddr, authHTTP, predictAddr, predictHTTP string
	authBin, dataDir                             string
	auth, predict                                *process
	authConn, predictConn                        *grpc.ClientConn
}

func (s *stack) startAuth(t *testing.T) {
	s.auth = start(s.owner, "authsvc", s.authBin, "--grpc-addr", s.authAddr, "--http-addr", s.authHTTP,
		"--data-dir", s.dataDir, "--bcrypt-cost", "10", "--log-level", "debug")
	waitServing(t, s.authConn, s.auth)
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	grpcurl := needTool(t, "grpcurl", filepath.Join(repoRoot(t), "bin", "tools"))
	// Debian's interpreter, which has python3-grpcio and python3-protobuf.
	python := needTool(t, "/usr/bin/python3")
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-grpcio/python3-protobuf missing: %s", out)
		}
		t.Skipf("SKIPPED: python3-grpcio/python3-protobuf not installed: %s", out)
	}
	authBin, predictBin := buildBinaries(t)
	s := &stack{
		owner:    t,
		authAddr: freeAddr(t), authHTTP: freeAddr(t), predictAddr: freeAddr(t), predictHTTP: freeAddr(t),
		authBin: authBin, dataDir: t.TempDir(),
	}
	s.authConn, s.predictConn = dial(t, s.authAddr), dial(t, s.predictAddr)
	// predictsvc starts first: it must wait for authsvc's keys, not fail.
	s.predict = start(t, "predictsvc", predictBin, "--grpc-addr", s.predictAddr, "--http-addr", s.predictHTTP,
		"--jwks-url", "http://"+s.authHTTP+"/.well-known/jwks.json", "--auth-addr", s.authAddr, "--log-level", "debug")
	s.startAuth(t)
	waitServing(t, s.predictConn, s.predict)

	var tokens []string
	t.Run("GoClient", func(t *testing.T) { tokens = append(tokens, goClientFlow(t, s)) })
	t.Run("Grpcurl", func(t *testing.T) { tokens = append(tokens, grpcurlFlow(t, s, grpcurl)) })
	t.Run("PythonClient", func(t *testing.T) { pythonFlow(t, s, python) })
	t.Run("HTTPProbesAndJWKS", func(t *testing.T) { httpEndpoints(t, s) })
	t.Run("Metrics", func(t *testing.T) { metricsMoved(t, s) })
	t.Run("RestartKeepsKeysAndUsers", func(t *testing.T) { tokens = append(tokens, restartFlow(t, s)) })

	s.predict.stop(t)
	s.auth.stop(t)
	// Case A9: no password or token in any log line, at debug level.
	logs := s.auth.logs.String() + s.predict.logs.String()
	if !strings.Contains(logs, "finished call") {
		t.Fatal("no calls were logged; the secret check would prove nothing")
	}
	for _, secret := range append([]string{canaryPassword}, tokens...) {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("a secret (%.12s…) appears in the service logs", secret)
		}
	}
}

func goClientFlow(t *testing.T, s *stack) string {
	ctx := context.Background()
	auth := authv1.NewAuthServiceClient(s.authConn)
	predict := predictionv1.NewPredictionServiceClient(s.predictConn)
	reg, err := auth.Register(ctx, &authv1.RegisterRequest{Email: "Go.User@Example.com", Password: canaryPassword})
	if err != nil {
		t.Fatal(err)
	}
	_, err = auth.Register(ctx, &authv1.RegisterRequest{Email: " go.user@example.com ", Password: canaryPassword})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second Register = %v, want ALREADY_EXISTS", err)
	}
	login, err := auth.Login(ctx, &authv1.LoginRequest{Email: "go.user@example.com", Password: canaryPassword})
	if err != nil {
		t.Fatal(err)
	}
	if login.GetTokenType() != "Bearer" || time.Until(login.GetExpireTime().AsTime()) < 14*time.Minute {
		t.Fatalf("login = %v", login)
	}
	_, err = auth.Login(ctx, &authv1.LoginRequest{Email: "go.user@example.com", Password: canaryPassword + "x"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong password = %v", err)
	}

	req := &predictionv1.PredictRequest{Model: "iris"}
	for _, s := range irisSamples {
		req.Instances = append(req.Instances, &predictionv1.Instance{Features: s.features})
	}
	_, err = predict.Predict(ctx, req)
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Predict without token = %v, want UNAUTHENTICATED", err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	resp, err := predict.Predict(authed, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range resp.GetPredictions() {
		if p.GetLabel() != irisSamples[i].label {
			t.Errorf("sample %d = %s, want %s", i, p.GetLabel(), irisSamples[i].label)
		}
	}
	if resp.GetModel() != "iris" || resp.GetModelVersion() != "1" || len(resp.GetPredictions()) != 3 {
		t.Fatalf("response = %v", resp)
	}
	_, err = predict.Predict(authed, &predictionv1.PredictRequest{Model: "iris", Instances: []*predictionv1.Instance{{Features: []float32{1, 2, 3}}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("3 features = %v", err)
	}
	if reg.GetUserId() == "" {
		t.Fatal("no user id")
	}
	return login.GetAccessToken()
}

func runGrpcurl(t *testing.T, grpcurl string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(grpcurl, args...).CombinedOutput()
	return string(out), err
}

func grpcurlFlow(t *testing.T, s *stack, grpcurl string) string {
	register := fmt.Sprintf(`{"email":"curl@example.com","password":%q}`, canaryPassword)
	if out, err := runGrpcurl(t, grpcurl, "-plaintext", "-d", register, s.authAddr, "auth.v1.AuthService/Register"); err != nil || !strings.Contains(out, "userId") {
		t.Fatalf("grpcurl Register: %v\n%s", err, out)
	}
	out, err := runGrpcurl(t, grpcurl, "-plaintext", "-d", register, s.authAddr, "auth.v1.AuthService/Login")
	if err != nil {
		t.Fatalf("grpcurl Login: %v\n%s", err, out)
	}
	var login struct {
		AccessToken string `json:"accessToken"`
		TokenType   string `json:"tokenType"`
	}
	if err := json.Unmarshal([]byte(out), &login); err != nil || login.TokenType != "Bearer" {
		t.Fatalf("Login output %q: %v", out, err)
	}
	predictReq := `{"model":"iris","instances":[{"features":[5.1,3.5,1.4,0.2]},{"features":[6.4,3.2,4.5,1.5]},{"features":[6.3,3.3,6.0,2.5]}]}`
	out, err = runGrpcurl(t, grpcurl, "-plaintext", "-H", "authorization: Bearer "+login.AccessToken, "-d", predictReq, s.predictAddr, "prediction.v1.PredictionService/Predict")
	if err != nil {
		t.Fatalf("grpcurl Predict: %v\n%s", err, out)
	}
	var resp struct {
		Predictions []struct {
			Label string `json:"label"`
		} `json:"predictions"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Predictions) != 3 {
		t.Fatalf("Predict output %q: %v", out, err)
	}
	for i, p := range resp.Predictions {
		if p.Label != irisSamples[i].label {
			t.Errorf("grpcurl sample %d = %s, want %s", i, p.Label, irisSamples[i].label)
		}
	}
	out, err = runGrpcurl(t, grpcurl, "-plaintext", "-d", predictReq, s.predictAddr, "prediction.v1.PredictionService/Predict")
	if err == nil || !strings.Contains(out, "Unauthenticated") {
		t.Fatalf("grpcurl Predict without token: %v\n%s", err, out)
	}
	out, err = runGrpcurl(t, grpcurl, "-plaintext", s.predictAddr, "grpc.health.v1.Health/Check")
	if err != nil || !strings.Contains(out, "SERVING") {
		t.Fatalf("grpcurl health without token: %v\n%s", err, out)
	}
	out, err = runGrpcurl(t, grpcurl, "-plaintext", s.predictAddr, "list")
	if err != nil || !strings.Contains(out, "prediction.v1.PredictionService") {
		t.Fatalf("grpcurl list (reflection): %v\n%s", err, out)
	}
	return login.AccessToken
}

func pythonFlow(t *testing.T, s *stack, python string) {
	cmd := exec.Command(python, "-m", "unittest", "discover", "-s", "clients/python/tests", "-v")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "MLGATE_AUTH_ADDR="+s.authAddr, "MLGATE_PREDICT_ADDR="+s.predictAddr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Python client tests failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "OK") || strings.Contains(string(out), "skipped") {
		t.Fatalf("Python client tests did not all run:\n%s", out)
	}
	t.Logf("python: %s", lastLine(string(out)))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func httpEndpoints(t *testing.T, s *stack) {
	for _, url := range []string{"http://" + s.authHTTP + "/readyz", "http://" + s.predictHTTP + "/readyz", "http://" + s.authHTTP + "/healthz", "http://" + s.predictHTTP + "/healthz"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %s", url, resp.Status)
		}
	}
	resp, err := http.Get("http://" + s.authHTTP + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"alg":"EdDSA"`) || !strings.Contains(string(body), `"kid":`) {
		t.Fatalf("JWKS = %s", body)
	}
}

// A restart of authsvc keeps its signing key (issued tokens stay valid) and
// its users; predictsvc keeps serving throughout.
func restartFlow(t *testing.T, s *stack) string {
	ctx := context.Background()
	auth := authv1.NewAuthServiceClient(s.authConn)
	before, err := auth.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	login, err := auth.Login(ctx, &authv1.LoginRequest{Email: "go.user@example.com", Password: canaryPassword})
	if err != nil {
		t.Fatal(err)
	}
	s.auth.stop(t)

	// authsvc is down: predictsvc still verifies with the keys it cached.
	predict := predictionv1.NewPredictionServiceClient(s.predictConn)
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	req := &predictionv1.PredictRequest{Model: "iris", Instances: []*predictionv1.Instance{{Features: irisSamples[0].features}}}
	if _, err := predict.Predict(authed, req); err != nil {
		t.Fatalf("Predict while authsvc is down: %v", err)
	}

	s.startAuth(t)
	after, err := auth.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if before.GetKeys()[0].GetKid() != after.GetKeys()[0].GetKid() {
		t.Fatalf("kid changed across restart: %s -> %s", before.GetKeys()[0].GetKid(), after.GetKeys()[0].GetKid())
	}
	if _, err := auth.Login(ctx, &authv1.LoginRequest{Email: "go.user@example.com", Password: canaryPassword}); err != nil {
		t.Fatalf("login after restart: %v", err)
	}
	if _, err := predict.Predict(authed, req); err != nil {
		t.Fatalf("token issued before the restart: %v", err)
	}
	return login.GetAccessToken()
}

// metricSum adds up the samples of a metric whose labels contain every
// fragment given, from a Prometheus text page.
func metricSum(page, name string, fragments ...string) (float64, bool) {
	var sum float64
	found := false
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for _, f := range fragments {
			match = match && strings.Contains(line, f)
		}
		if !match {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// After the flows above, the gRPC, auth and model metrics have moved.
func metricsMoved(t *testing.T, s *stack) {
	get := func(addr string) string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %s", resp.Status)
		}
		return string(body)
	}
	auth, predict := get(s.authHTTP), get(s.predictHTTP)
	checks := []struct {
		page, name string
		labels     []string
		atLeast    float64
	}{
		{predict, "grpc_server_handled_total", []string{`grpc_method="Predict"`, `grpc_code="OK"`}, 3},
		{predict, "grpc_server_handled_total", []string{`grpc_method="GetModel"`, `grpc_code="OK"`}, 0},
		{predict, "grpc_server_handling_seconds_count", []string{`grpc_method="Predict"`}, 3},
		{predict, "mlgate_predictions_total", []string{`model="iris"`, `version="1"`}, 9},
		{predict, "mlgate_inference_seconds_count", []string{`model="iris"`}, 3},
		{predict, "mlgate_batch_size_count", []string{`model="iris"`}, 3},
		{predict, "mlgate_token_verifications_total", []string{`outcome="ok"`}, 3},
		{predict, "mlgate_token_verifications_total", []string{`outcome="missing"`}, 1},
		{predict, "mlgate_build_info", []string{`service="predictsvc"`}, 1},
		{auth, "mlgate_auth_events_total", []string{`kind="register"`, `outcome="success"`}, 2},
		{auth, "mlgate_auth_events_total", []string{`kind="login"`, `outcome="success"`}, 2},
		{auth, "mlgate_auth_events_total", []string{`kind="login"`, `outcome="failure"`}, 1},
		{auth, "grpc_server_handled_total", []string{`grpc_method="Login"`}, 2},
		{auth, "mlgate_build_info", []string{`service="authsvc"`}, 1},
	}
	for _, c := range checks {
		v, found := metricSum(c.page, c.name, c.labels...)
		if !found || v < c.atLeast {
			t.Errorf("%s%v = %v (found %v), want at least %v", c.name, c.labels, v, found, c.atLeast)
		}
	}
}
