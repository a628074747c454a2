// Command bench builds and starts the real authsvc and predictsvc, drives
// them over gRPC on loopback, and reports throughput, latency, errors and
// memory for each scenario, then the ratios mlgate's targets are stated in
// (see BENCHMARKS.md). `make bench` runs it; it takes about a minute and a half.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/loadgen"
)

func main() {
	duration := flag.Duration("duration", 6*time.Second, "length of each measured scenario")
	out := flag.String("out", "bench/results.json", "where to write the results")
	flag.Parse()
	if err := run(*duration, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one scenario's figures.
type result struct {
	Name     string  `json:"name"`
	Conc     int     `json:"concurrency"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

type report struct {
	Machine   string             `json:"machine"`
	Cores     int                `json:"cores"`
	Results   []result           `json:"results"`
	Figures   map[string]float64 `json:"figures"`
	Ratios    []ratio            `json:"ratios"`
	Generated string             `json:"generated"`
}

type ratio struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
}

type service struct {
	cmd  *exec.Cmd
	done chan error
}

func (s *service) rssMiB() float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

func (s *service) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startService(bin string, args ...string) (*service, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "AUTHSVC_LOG_LEVEL=warn", "PREDICTSVC_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &service{cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	return s, nil
}

// waitServing returns how long until the service reported SERVING.
func waitServing(conn *grpc.ClientConn, since time.Time) (time.Duration, error) {
	health := healthpb.NewHealthClient(conn)
	for time.Since(since) < 30*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return time.Since(since), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, errors.New("never SERVING")
}

func dial(addr string) *grpc.ClientConn {
	// A short reconnect backoff, so start-up time is measured, not the
	// client's default one-second wait after the first refused dial.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1, MaxDelay: 5 * time.Millisecond}, MinConnectTimeout: time.Second}))
	if err != nil {
		panic(err)
	}
	return conn
}

// load runs call from conc goroutines for d and summarises the latencies.
// Each call gets a 10 s deadline under base (which carries a scenario's
// metadata, so no call rebuilds it).
func load(name string, conc int, d time.Duration, base context.Context, call func(ctx context.Context) error) result {
	var (
		perWorker []*[]time.Duration
		errs      atomic.Int64
	)
	loadgen.Run(conc, d, func() func() {
		mine := new([]time.Duration)
		perWorker = append(perWorker, mine)
		return func() {
			start := time.Now()
			ctx, cancel := context.WithTimeout(base, 10*time.Second)
			err := call(ctx)
			cancel()
			if err != nil {
				errs.Add(1)
				return
			}
			*mine = append(*mine, time.Since(start))
		}
	})
	var latencies []time.Duration
	for _, mine := range perWorker {
		latencies = append(latencies, *mine...)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(float64(len(latencies)-1)*p)]) / float64(time.Millisecond)
	}
	r := result{Name: name, Conc: conc, Requests: int64(len(latencies)), Errors: errs.Load(),
		RPS: float64(len(latencies)) / d.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99)}
	fmt.Printf("%-34s c=%-3d %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d\n", r.Name, r.Conc, r.RPS, r.P50ms, r.P99ms, r.Errors)
	return r
}

func run(d time.Duration, outPath string) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mlgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"authsvc", "predictsvc"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name)
		build.Dir, build.Stderr = root, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", name, err)
		}
	}
	rep := report{Cores: runtime.NumCPU(), Figures: map[string]float64{}, Generated: time.Now().UTC().Format(time.RFC3339)}
	if cpu, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`model name\s*:\s*(.*)`).FindSubmatch(cpu); m != nil {
			rep.Machine = strings.TrimSpace(string(m[1]))
		}
	}

	authAddr, authHTTP, predictAddr, predictHTTP := freeAddr(), freeAddr(), freeAddr(), freeAddr()
	// Limits opened up: the bench logs in far more often than a person.
	authArgs := []string{"--grpc-addr", authAddr, "--http-addr", authHTTP, "--data-dir", filepath.Join(dir, "data"),
		"--login-max-failures", "1000000", "--login-max-per-address", "1000000"}
	startAuth := func(extra ...string) (*service, *grpc.ClientConn, time.Duration, error) {
		t0 := time.Now()
		s, err := startService(filepath.Join(dir, "authsvc"), append(authArgs, extra...)...)
		if err != nil {
			return nil, nil, 0, err
		}
		conn := dial(authAddr)
		took, err := waitServing(conn, t0)
		return s, conn, took, err
	}
	auth, authConn, authStart, err := startAuth()
	if err != nil {
		return fmt.Errorf("authsvc: %w", err)
	}
	defer func() { auth.stop() }()
	t0 := time.Now()
	predict, err := startService(filepath.Join(dir, "predictsvc"), "--grpc-addr", predictAddr, "--http-addr", predictHTTP,
		"--jwks-url", "http://"+authHTTP+"/.well-known/jwks.json", "--auth-addr", authAddr)
	if err != nil {
		return err
	}
	defer predict.stop()
	predictConn := dial(predictAddr)
	predictStart, err := waitServing(predictConn, t0)
	if err != nil {
		return fmt.Errorf("predictsvc: %w", err)
	}
	rep.Figures["authsvc_start_to_serving_s"] = authStart.Seconds()
	rep.Figures["predictsvc_start_to_serving_s"] = predictStart.Seconds()
	fmt.Printf("start to SERVING: authsvc %s, predictsvc %s (predictsvc waits for authsvc's keys)\n", authStart.Round(time.Millisecond), predictStart.Round(time.Millisecond))

	authc := authv1.NewAuthServiceClient(authConn)
	ctx := context.Background()
	const pw = "bench password 1"
	if _, err := authc.Register(ctx, &authv1.RegisterRequest{Email: "bench@example.com", Password: pw}); err != nil {
		return err
	}
	login, err := authc.Login(ctx, &authv1.LoginRequest{Email: "bench@example.com", Password: pw})
	if err != nil {
		return err
	}
	predictc := predictionv1.NewPredictionServiceClient(predictConn)
	healthc := healthpb.NewHealthClient(predictConn)
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	req := &predictionv1.PredictRequest{Model: "iris", Instances: []*predictionv1.Instance{{Features: []float32{5.1, 3.5, 1.4, 0.2}}}}
	predictCall := func(c context.Context) error {
		_, err := predictc.Predict(c, req)
		return err
	}
	healthCall := func(c context.Context) error {
		_, err := healthc.Check(c, &healthpb.HealthCheckRequest{})
		return err
	}
	loginCall := func(c context.Context) error {
		_, err := authc.Login(c, &authv1.LoginRequest{Email: "bench@example.com", Password: pw})
		return err
	}

	load("warm-up", 16, time.Second, authed, predictCall)
	health16 := load("health Check", 16, d, ctx, healthCall)
	p1 := load("Predict", 1, d, authed, predictCall)
	p16 := load("Predict", 16, d, authed, predictCall)
	p64 := load("Predict", 64, d, authed, predictCall)
	rep.Results = append(rep.Results, health16, p1, p16, p64)
	// The ratio from 24 pairs of alternating 250 ms slices, so drift on the
	// machine hits both alike.
	workload := func(base context.Context, call func(context.Context) error) loadgen.Workload {
		return func(d time.Duration) int64 { return loadgen.Count(16, d, func() error { return call(base) }) }
	}
	predictVsHealth := loadgen.Ratio(workload(authed, predictCall), workload(ctx, healthCall), 250*time.Millisecond, 24)
	fmt.Printf("Predict / health Check, c=16, 24 alternating pairs of 250 ms slices: %.3f\n", predictVsHealth)

	// Predict while Login is flooded (default bcrypt pool: cores - 1 workers).
	var flood result
	floodDone := make(chan struct{})
	go func() { flood = load("Login flood (background)", 32, d+time.Second, ctx, loginCall); close(floodDone) }()
	time.Sleep(500 * time.Millisecond)
	pFlood := load("Predict during Login flood", 16, d, authed, predictCall)
	<-floodDone
	rep.Results = append(rep.Results, pFlood, flood)
	rep.Figures["authsvc_rss_mib"] = auth.rssMiB()
	rep.Figures["predictsvc_rss_mib"] = predict.rssMiB()

	// Login throughput with every core hashing, against the bcrypt limit.
	auth.stop()
	authConn.Close()
	auth, authConn, _, err = startAuth("--bcrypt-workers", strconv.Itoa(runtime.NumCPU()), "--bcrypt-queue", "256")
	if err != nil {
		return err
	}
	authc = authv1.NewAuthServiceClient(authConn)
	loginThroughput := load("Login (bcrypt cost 12)", 2*runtime.NumCPU(), d, ctx, loginCall)
	rep.Results = append(rep.Results, loginThroughput)
	hash := singleHashTime()
	bcryptLimit := float64(runtime.NumCPU()) / hash.Seconds()
	rep.Figures["bcrypt_single_hash_ms"] = float64(hash) / float64(time.Millisecond)
	rep.Figures["bcrypt_limit_rps"] = bcryptLimit

	authVsNoAuth, err := chainRatio(root)
	if err != nil {
		return err
	}
	maxRSS := max(rep.Figures["authsvc_rss_mib"], rep.Figures["predictsvc_rss_mib"], auth.rssMiB())
	maxStart := max(authStart.Seconds(), predictStart.Seconds())
	rep.Ratios = []ratio{
		{"Predict c=16 / health Check c=16 (req/s)", predictVsHealth, ">= 0.8", predictVsHealth >= 0.8},
		{"Predict with auth / without the auth interceptor", authVsNoAuth, ">= 0.95", authVsNoAuth >= 0.95},
		{"Login req/s / bcrypt limit (cores / hash time)", loginThroughput.RPS / bcryptLimit, ">= 0.9", loginThroughput.RPS/bcryptLimit >= 0.9},
		{"Predict p99 during Login flood / idle", pFlood.P99ms / p16.P99ms, "<= 3", pFlood.P99ms/p16.P99ms <= 3},
		{"largest resident memory (MiB)", maxRSS, "<= 64", maxRSS <= 64},
		{"slowest start to SERVING (s)", maxStart, "<= 1", maxStart <= 1},
	}
	fmt.Println()
	fmt.Printf("%-52s %10s  %-8s %s\n", "ratio", "value", "target", "")
	for _, r := range rep.Ratios {
		verdict := "met"
		if !r.Met {
			verdict = "NOT MET"
		}
		fmt.Printf("%-52s %10.3f  %-8s %s\n", r.Name, r.Value, r.Target, verdict)
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, append(data, '\n'), 0o644)
}

func singleHashTime() time.Duration {
	const n = 5
	start := time.Now()
	for range n {
		bcrypt.GenerateFromPassword([]byte("bench password 1"), 12)
	}
	return time.Since(start) / n
}

// chainRatio runs BenchmarkAuthOverhead, which alternates the auth and
// no-auth wirings of Predict in 100 ms slices within one process (40 pairs),
// and returns the auth/noauth ratio it reports.
func chainRatio(root string) (float64, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkAuthOverhead$", "-benchtime", "40x", "./predictsvc/internal/grpcapi/")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("BenchmarkAuthOverhead: %w\n%s", err, out)
	}
	m := regexp.MustCompile(`([\d.]+) auth/noauth`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("benchmark output not understood:\n%s", out)
	}
	ratio, err := strconv.ParseFloat(string(m[1]), 64)
	fmt.Printf("Predict with auth / without, c=16, 40 alternating pairs of 100 ms slices: %.3f\n", ratio)
	return ratio, err
}
