package grpcserver_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protowire"

	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/grpctest"
	"github.com/mlgate/mlgate/internal/syncbuf"
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

func setup(t *testing.T) (predictionv1.PredictionServiceClient, healthpb.HealthClient, *tokentest.Issuer, *syncbuf.Buffer) {
	conn, iss, logs := serveProbe(t)
	return predictionv1.NewPredictionServiceClient(conn), healthpb.NewHealthClient(conn), iss, logs
}

// serveProbe serves probeService through the real chain over bufconn,
// logging at debug (every call).
func serveProbe(t *testing.T) (*grpc.ClientConn, *tokentest.Issuer, *syncbuf.Buffer) {
	return serveProbeLogging(t, slog.LevelDebug)
}

func serveProbeLogging(t *testing.T, level slog.Level) (*grpc.ClientConn, *tokentest.Issuer, *syncbuf.Buffer) {
	iss := tokentest.NewIssuer(t)
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience, Leeway: 30 * time.Second}, iss, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	srv, _ := grpcserver.New(grpcserver.Config{
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})),
		Authenticate: grpcserver.BearerAuth(v, nil),
	})
	predictionv1.RegisterPredictionServiceServer(srv, probeService{})
	return grpctest.Dial(t, srv), iss, logs
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
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience}, noKeysYet{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := grpcserver.New(grpcserver.Config{Logger: grpctest.DiscardLogger(), Authenticate: grpcserver.BearerAuth(v, nil)})
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

// A request that does not decode (here: invalid UTF-8 in a string field) is
// the client's mistake: UNAUTHENTICATED without a token, INVALID_ARGUMENT with
// one, never INTERNAL, and the handler never sees it.
func TestUndecodableRequest(t *testing.T) {
	iss, conn := probeChain(t)
	// Field 1 (name), wire type 2, 2 bytes: 0xff 0xfe is not UTF-8.
	badUTF8 := rawMessage{0x0a, 0x02, 0xff, 0xfe}
	truncated := rawMessage{0x0a, 0x10, 'a'}
	// A client forging the codec's own marker gets no special treatment.
	forged := protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.BytesType)
	forged = protowire.AppendBytes(forged, []byte("mlgate: undecodable request: "+strings.Repeat("x", 1<<20)))
	var out rawMessage
	ctx := grpctest.Bearer(context.Background(), iss.Valid(t, "u"))
	forgedMsg := rawMessage(forged)
	if err := conn.Invoke(ctx, "/prediction.v1.PredictionService/GetModel", &forgedMsg, &out, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Fatalf("a well-formed request carrying the marker field: %v", err)
	}
	for name, body := range map[string]rawMessage{"invalid UTF-8": badUTF8, "truncated": truncated} {
		t.Run(name, func(t *testing.T) {
			var out rawMessage
			err := conn.Invoke(context.Background(), "/prediction.v1.PredictionService/GetModel", &body, &out, grpc.ForceCodecV2(rawCodec{}))
			grpctest.WantCode(t, err, codes.Unauthenticated)
			ctx := grpctest.Bearer(context.Background(), iss.Valid(t, "u"))
			err = conn.Invoke(ctx, "/prediction.v1.PredictionService/GetModel", &body, &out, grpc.ForceCodecV2(rawCodec{}))
			st := grpctest.WantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(st.Message(), "could not be decoded") {
				t.Fatalf("message %q", st.Message())
			}
		})
	}
}

// Two bytes on the wire per empty nested message would decode into millions
// of objects before authentication: the codec refuses to build them, so the
// call costs the server little more than its bytes, and the handler never
// runs.
func TestRequestWithTooManyElements(t *testing.T) {
	iss, conn := probeChain(t)
	emptyInstances := func(n int) *rawMessage {
		var b []byte
		for range n {
			b = protowire.AppendTag(b, 2, protowire.BytesType) // PredictRequest.instances
			b = protowire.AppendBytes(b, nil)
		}
		m := rawMessage(b)
		return &m
	}
	const predict = "/prediction.v1.PredictionService/Predict"
	authed := grpctest.Bearer(context.Background(), iss.Valid(t, "u"))
	var out rawMessage

	// Up to the bound the request reaches the handler (probeService does not
	// implement Predict).
	err := conn.Invoke(authed, predict, emptyInstances(grpcserver.DefaultMaxRequestElements), &out, grpc.ForceCodecV2(rawCodec{}))
	grpctest.WantCode(t, err, codes.Unimplemented)

	flood := emptyInstances((grpcserver.DefaultMaxRecvMsgBytes - 64) / 2) // two million
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err = conn.Invoke(context.Background(), predict, flood, &out, grpc.ForceCodecV2(rawCodec{}))
	grpctest.WantCode(t, err, codes.Unauthenticated)
	err = conn.Invoke(authed, predict, flood, &out, grpc.ForceCodecV2(rawCodec{}))
	st := grpctest.WantCode(t, err, codes.ResourceExhausted)
	runtime.ReadMemStats(&after)
	if !strings.Contains(st.Message(), "request too large") {
		t.Errorf("message %q", st.Message())
	}
	// Decoded, each call would allocate over 100 MiB; refused, about its
	// 4 MiB of bytes, a few times over in transport buffers.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 64<<20 {
		t.Errorf("two refused calls allocated %d MiB", allocated>>20)
	}
}

// probeChain serves probeService through the default chain with bearer
// authentication, trusting the returned issuer.
func probeChain(t *testing.T) (*tokentest.Issuer, *grpc.ClientConn) {
	t.Helper()
	iss := tokentest.NewIssuer(t)
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience}, iss, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := grpcserver.New(grpcserver.Config{Logger: grpctest.DiscardLogger(), Authenticate: grpcserver.BearerAuth(v, nil)})
	predictionv1.RegisterPredictionServiceServer(srv, probeService{})
	return iss, grpctest.Dial(t, srv)
}

// rawMessage and rawCodec send bytes exactly as given.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*rawMessage))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*rawMessage) = data.Materialize()
	return nil
}

// Every call is logged but probes and tooling: a health check or a
// reflection stream (grpcurl opens one per command) says nothing about the
// service and would double the log.
func TestProbesAndReflectionAreNotLogged(t *testing.T) {
	conn, iss, logs := serveProbe(t)
	client := predictionv1.NewPredictionServiceClient(conn)
	ctx := context.Background()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	stream.Recv() // the server ends the stream
	if _, err := client.GetModel(grpctest.Bearer(ctx, iss.Valid(t, "u")), &predictionv1.GetModelRequest{}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "GetModel") {
		t.Fatalf("an ordinary call was not logged:\n%s", out)
	}
	for _, quiet := range []string{"grpc.health.v1", "ServerReflection"} {
		if strings.Contains(out, quiet) {
			t.Errorf("%s was logged:\n%s", quiet, out)
		}
	}
}

// At debug every call is logged; at the default info only failures are, at
// a level by who failed: the client (info) or the service (error).
func TestCallLogLevels(t *testing.T) {
	for _, tc := range []struct {
		level                 slog.Level
		okLogged              bool
		wantUnauth, wantPanic string // the level each failure is logged at
	}{
		{slog.LevelDebug, true, "INFO", "ERROR"},
		{slog.LevelInfo, false, "INFO", "ERROR"},
		{slog.LevelWarn, false, "", "ERROR"},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			conn, iss, logs := serveProbeLogging(t, tc.level)
			client := predictionv1.NewPredictionServiceClient(conn)
			ctx := context.Background()
			if _, err := client.GetModel(grpctest.Bearer(ctx, iss.Valid(t, "u")), &predictionv1.GetModelRequest{}); err != nil {
				t.Fatal(err)
			}
			_, err := client.Predict(ctx, &predictionv1.PredictRequest{})
			grpctest.WantCode(t, err, codes.Unauthenticated)
			_, err = client.ListModels(grpctest.Bearer(ctx, iss.Valid(t, "u")), &predictionv1.ListModelsRequest{})
			grpctest.WantCode(t, err, codes.Internal)

			lines := map[string]map[string]any{}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var entry map[string]any
				if json.Unmarshal([]byte(line), &entry) == nil && entry["grpc.method"] != nil {
					lines[entry["grpc.method"].(string)] = entry
				}
			}
			if _, logged := lines["GetModel"]; logged != tc.okLogged {
				t.Errorf("successful call logged: %v, want %v", logged, tc.okLogged)
			}
			for method, want := range map[string]string{"Predict": tc.wantUnauth, "ListModels": tc.wantPanic} {
				entry, logged := lines[method]
				switch {
				case want == "" && logged:
					t.Errorf("%s logged at %v, want not logged", method, entry["level"])
				case want != "" && (!logged || entry["level"] != want):
					t.Errorf("%s: log entry %v, want one at %s", method, entry, want)
				case logged && (entry["grpc.code"] == nil || entry["grpc.error"] == nil || entry["msg"] != "finished call"):
					t.Errorf("%s: log entry %v lacks the access log's message, grpc.code or grpc.error", method, entry)
				}
			}
		})
	}
}
