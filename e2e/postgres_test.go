package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/pgtest"
)

// authReplica starts one authsvc on databaseURL and waits until it serves.
func authReplica(t *testing.T, bin, databaseURL string, extra ...string) (*process, string, string) {
	t.Helper()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	args := append([]string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--data-dir", t.TempDir(),
		"--database-url", databaseURL, "--bcrypt-cost", "10"}, extra...)
	p := start(t, "authsvc "+grpcAddr, bin, args...)
	waitServing(t, dial(t, grpcAddr), p)
	return p, grpcAddr, httpAddr
}

// Two authsvc replicas on one PostgreSQL database act as one service: a user
// registered through one logs in through the other, and predictsvc, which
// fetches keys from the first only, accepts tokens signed by the second.
func TestPostgresReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	db := pgtest.NewDatabase(t)
	authBin, predictBin := buildBinaries(t)
	_, addr1, http1 := authReplica(t, authBin, db)
	_, addr2, _ := authReplica(t, authBin, db)
	predictAddr := freeAddr(t)
	predict := start(t, "predictsvc", predictBin, "--grpc-addr", predictAddr, "--http-addr", freeAddr(t),
		"--jwks-url", "http://"+http1+"/.well-known/jwks.json", "--auth-addr", addr1)
	predictConn := dial(t, predictAddr)
	waitServing(t, predictConn, predict)

	ctx := context.Background()
	replica1 := authv1.NewAuthServiceClient(dial(t, addr1))
	replica2 := authv1.NewAuthServiceClient(dial(t, addr2))
	if _, err := replica1.Register(ctx, &authv1.RegisterRequest{Email: "Replica@Example.com", Password: "shared password"}); err != nil {
		t.Fatal(err)
	}
	_, err := replica2.Register(ctx, &authv1.RegisterRequest{Email: "replica@example.com", Password: "other password"})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("same email on replica 2 = %v, want ALREADY_EXISTS", err)
	}
	login, err := replica2.Login(ctx, &authv1.LoginRequest{Email: "replica@example.com", Password: "shared password"})
	if err != nil {
		t.Fatalf("login on replica 2 for a user registered on replica 1: %v", err)
	}
	jwks1, err := replica1.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	jwks2, err := replica2.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if jwks1.GetKeys()[0].GetKid() != jwks2.GetKeys()[0].GetKid() {
		t.Fatalf("replicas publish different keys: %s vs %s", jwks1.GetKeys()[0].GetKid(), jwks2.GetKeys()[0].GetKid())
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.GetAccessToken())
	resp, err := predictionv1.NewPredictionServiceClient(predictConn).Predict(authed, &predictionv1.PredictRequest{
		Model: "iris", Instances: []*predictionv1.Instance{{Features: irisSamples[0].features}},
	})
	if err != nil {
		t.Fatalf("predict with replica 2's token: %v", err)
	}
	if resp.GetPredictions()[0].GetLabel() != "setosa" {
		t.Fatalf("label = %s", resp.GetPredictions()[0].GetLabel())
	}
}

// PostgreSQL stops and starts under a stream of Registers: while it is down,
// authsvc answers UNAVAILABLE before the call's deadline and reports
// NOT_SERVING; it recovers by itself; and every acknowledged registration is
// there afterwards, even after authsvc is killed.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	cluster := pgtest.StartCluster(t)
	authBin, _ := buildBinaries(t)
	dbURL := cluster.URL()
	proc, addr, _ := authReplica(t, authBin, dbURL, "--db-connect-timeout", "1s")
	conn := dial(t, addr)
	client := authv1.NewAuthServiceClient(conn)
	health := healthpb.NewHealthClient(conn)

	var (
		mu       sync.Mutex
		acked    []string
		failures = map[codes.Code]int{}
	)
	ctx, stopStream := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				email := fmt.Sprintf("outage-%d-%d@example.com", w, i)
				callCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := client.Register(callCtx, &authv1.RegisterRequest{Email: email, Password: "outage password"})
				cancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, email)
				} else if ctx.Err() == nil {
					failures[status.Code(err)]++
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	countAcked := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	healthIs := func(want healthpb.HealthCheckResponse_ServingStatus) func() bool {
		return func() bool {
			c, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			resp, err := health.Check(c, &healthpb.HealthCheckRequest{})
			return err == nil && resp.GetStatus() == want
		}
	}

	waitUntil("20 registrations are acknowledged", func() bool { return countAcked() >= 20 })
	cluster.Stop(t)
	waitUntil("health reports NOT_SERVING", healthIs(healthpb.HealthCheckResponse_NOT_SERVING))
	callCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := client.Register(callCtx, &authv1.RegisterRequest{Email: "during@example.com", Password: "outage password"})
	cancel()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Register with the database down = %v, want UNAVAILABLE before the 3s deadline", err)
	}
	_, err = client.Login(context.Background(), &authv1.LoginRequest{Email: "outage-0-0@example.com", Password: "outage password"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Login with the database down = %v, want UNAVAILABLE", err)
	}
	before := countAcked()
	cluster.Start(t)
	waitUntil("health reports SERVING again", healthIs(healthpb.HealthCheckResponse_SERVING))
	waitUntil("registrations succeed again", func() bool { return countAcked() >= before+20 })
	stopStream()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for code, n := range failures {
		if code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Errorf("%d Registers failed with %s during the outage; want only UNAVAILABLE (or a deadline)", n, code)
		}
	}
	t.Logf("%d registrations acknowledged, failures during the outage: %v", len(acked), failures)

	// Kill authsvc outright, start a fresh one: every acknowledged user is
	// there and can log in (checked in the database for all, by login for some).
	proc.cmd.Process.Kill()
	<-proc.done
	_, addr2, _ := authReplica(t, authBin, dbURL)
	stored := storedEmails(t, dbURL)
	for _, email := range acked {
		if !stored[email] {
			t.Errorf("acknowledged registration %s lost", email)
		}
	}
	client2 := authv1.NewAuthServiceClient(dial(t, addr2))
	for _, email := range []string{acked[0], acked[len(acked)/2], acked[len(acked)-1]} {
		if _, err := client2.Login(context.Background(), &authv1.LoginRequest{Email: email, Password: "outage password"}); err != nil {
			t.Errorf("login as %s after the restart: %v", email, err)
		}
	}
}

func storedEmails(t *testing.T, dbURL string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT email FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	emails, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool, len(emails))
	for _, e := range emails {
		out[e] = true
	}
	return out
}
