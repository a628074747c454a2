package grpcapi_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"math"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/grpcserver"
	"github.com/mlgate/mlgate/internal/grpctest"
	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/internal/tokentest"
	"github.com/mlgate/mlgate/models"
	"github.com/mlgate/mlgate/predictsvc/internal/grpcapi"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/onnxmodel"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
)

const testMaxBatch = 64

type fixture struct {
	conn   *grpc.ClientConn
	client predictionv1.PredictionServiceClient
	issuer *tokentest.Issuer
	token  string
}

// newFixture wires predictsvc as main does: the real interceptor chain, the
// bundled iris model, a verifier trusting a test issuer's key.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	loaded, err := model.LoadDir(withRestrictedCopy(t, models.Bundled()), onnxmodel.Open)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := model.NewCatalog(loaded...)
	if err != nil {
		t.Fatal(err)
	}
	predictor, err := prediction.NewService(catalog, testMaxBatch)
	if err != nil {
		t.Fatal(err)
	}
	iss := tokentest.NewIssuer(t)
	verifier, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience, Leeway: 30 * time.Second}, iss, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, health := grpcserver.New(grpcserver.Config{
		Logger: grpctest.DiscardLogger(), Authenticate: grpcserver.BearerAuth(verifier, nil), RequiredScopes: grpcapi.RequiredScopes,
	})
	health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	predictionv1.RegisterPredictionServiceServer(srv, grpcapi.NewServer(predictor, grpctest.DiscardLogger()))
	conn := grpctest.Dial(t, srv)
	return &fixture{conn: conn, client: predictionv1.NewPredictionServiceClient(conn), issuer: iss, token: iss.Valid(t, "user-1")}
}

// withRestrictedCopy adds "iris-restricted": the bundled iris model whose
// metadata asks for the scope "predict:restricted".
func withRestrictedCopy(t testing.TB, bundled fs.FS) fs.FS {
	t.Helper()
	meta, err := fs.ReadFile(bundled, "iris/metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	onnx, err := fs.ReadFile(bundled, "iris/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(meta, &m); err != nil {
		t.Fatal(err)
	}
	m["name"], m["required_scope"] = "iris-restricted", "predict:restricted"
	restricted, _ := json.Marshal(m)
	return fstest.MapFS{
		"iris/metadata.json":            {Data: meta},
		"iris/model.onnx":               {Data: onnx},
		"iris-restricted/metadata.json": {Data: restricted},
		"iris-restricted/model.onnx":    {Data: onnx},
	}
}

func instances(rows ...[]float32) []*predictionv1.Instance {
	out := make([]*predictionv1.Instance, len(rows))
	for i, r := range rows {
		out[i] = &predictionv1.Instance{Features: r}
	}
	return out
}

// everyMethod calls each PredictionService method with a well-formed request.
func everyMethod(client predictionv1.PredictionServiceClient) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"Predict": func(ctx context.Context) error {
			_, err := client.Predict(ctx, &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, 1.4, 0.2})})
			return err
		},
		"ListModels": func(ctx context.Context) error {
			_, err := client.ListModels(ctx, &predictionv1.ListModelsRequest{})
			return err
		},
		"GetModel": func(ctx context.Context) error {
			_, err := client.GetModel(ctx, &predictionv1.GetModelRequest{Name: "iris"})
			return err
		},
	}
}

// Rows T1–T11 and P8: every method refuses every bad credential, and accepts
// a good one.
func TestEveryMethodNeedsValidToken(t *testing.T) {
	f := newFixture(t)
	withAuth := func(values ...string) context.Context {
		md := metadata.MD{}
		for _, v := range values {
			md.Append("authorization", v)
		}
		return metadata.NewOutgoingContext(context.Background(), md)
	}
	bad := map[string]context.Context{
		"T1 no authorization":            context.Background(),
		"T2 Bearer without token":        withAuth("Bearer"),
		"T2 Bearer and a space":          withAuth("Bearer "),
		"T3 Basic scheme":                withAuth("Basic " + f.token),
		"T4 token then extra":            withAuth("Bearer " + f.token + " extra"),
		"token without scheme":           withAuth(f.token),
		"two authorization values":       withAuth("Bearer "+f.token, "Bearer "+f.token),
		"T12 1 MiB of dots":              withAuth("Bearer " + strings.Repeat(".", 1<<20)),
		"empty authorization value":      withAuth(""),
		"Bearer with two spaces":         withAuth("Bearer  " + f.token),
		"valid token for other audience": grpctest.Bearer(context.Background(), f.issuer.Sign(t, func() map[string]any { c := f.issuer.Claims("u"); c["aud"] = "x"; return c }())),
	}
	for _, forged := range f.issuer.Forgeries(t) {
		bad[forged.Name] = grpctest.Bearer(context.Background(), forged.Token)
	}
	for method, call := range everyMethod(f.client) {
		for name, ctx := range bad {
			t.Run(method+"/"+name, func(t *testing.T) {
				grpctest.WantCode(t, call(ctx), codes.Unauthenticated)
			})
		}
		t.Run(method+"/valid token", func(t *testing.T) {
			if err := call(grpctest.Bearer(context.Background(), f.token)); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(method+"/lower-case scheme", func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "bearer "+f.token)
			if err := call(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Only health and reflection answer without a token.
func TestHealthAndReflectionArePublic(t *testing.T) {
	f := newFixture(t)
	resp, err := healthpb.NewHealthClient(f.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health Check without token = %v, %v", resp, err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	got, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection without token: %v", err)
	}
	var names []string
	for _, s := range got.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "prediction.v1.PredictionService") {
		t.Fatalf("reflection lists %v", names)
	}
}

func TestPredictIris(t *testing.T) {
	f := newFixture(t)
	resp, err := f.client.Predict(grpctest.Bearer(context.Background(), f.token), &predictionv1.PredictRequest{
		Model:     "iris",
		Instances: instances([]float32{5.1, 3.5, 1.4, 0.2}, []float32{6.4, 3.2, 4.5, 1.5}, []float32{6.3, 3.3, 6.0, 2.5}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetModel() != "iris" || resp.GetModelVersion() != "1" {
		t.Fatalf("model = %s@%s", resp.GetModel(), resp.GetModelVersion())
	}
	wantLabels := []string{"setosa", "versicolor", "virginica"}
	if len(resp.GetPredictions()) != len(wantLabels) {
		t.Fatalf("got %d predictions", len(resp.GetPredictions()))
	}
	for i, p := range resp.GetPredictions() {
		if p.GetLabel() != wantLabels[i] {
			t.Errorf("prediction %d = %s, want %s", i, p.GetLabel(), wantLabels[i])
		}
		var sum float64
		for j, lp := range p.GetProbabilities() {
			if lp.GetLabel() != wantLabels[j] {
				t.Errorf("probability %d labelled %s, want %s", j, lp.GetLabel(), wantLabels[j])
			}
			sum += float64(lp.GetProbability())
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Errorf("prediction %d probabilities sum to %v", i, sum)
		}
	}
}

// Rows P1–P5 and neighbours: the code, and a message naming the field.
func TestPredictRejectsBadRequests(t *testing.T) {
	f := newFixture(t)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tooMany := make([][]float32, testMaxBatch+1)
	for i := range tooMany {
		tooMany[i] = []float32{5.1, 3.5, 1.4, 0.2}
	}
	tests := []struct {
		name      string
		req       *predictionv1.PredictRequest
		wantCode  codes.Code
		wantInMsg string
		wantField string
	}{
		{"P1 empty request", &predictionv1.PredictRequest{}, codes.InvalidArgument, "model", "model"},
		{"huge model name", &predictionv1.PredictRequest{Model: strings.Repeat("m", 3<<20), Instances: instances([]float32{1, 2, 3, 4})}, codes.InvalidArgument, "at most 128", "model"},
		{"P2 unknown model", &predictionv1.PredictRequest{Model: "tulips", Instances: instances([]float32{1, 2, 3, 4})}, codes.NotFound, "tulips", ""},
		{"P3 three features", &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, 1.4})}, codes.InvalidArgument, "takes 4 features", "instances[0].features"},
		{"P3 five features", &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, 1.4, 0.2}, []float32{1, 2, 3, 4, 5})}, codes.InvalidArgument, "got 5", "instances[1].features"},
		{"P4 NaN", &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, nan, 1.4, 0.2})}, codes.InvalidArgument, "finite", "instances[0].features[1]"},
		{"P4 +Inf", &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, inf, 0.2})}, codes.InvalidArgument, "finite", "instances[0].features[2]"},
		{"P4 -Inf", &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{-inf, 3.5, 1.4, 0.2})}, codes.InvalidArgument, "finite", "instances[0].features[0]"},
		{"P5 no instances", &predictionv1.PredictRequest{Model: "iris"}, codes.InvalidArgument, "at least one instance", "instances"},
		{"P5 instance without features", &predictionv1.PredictRequest{Model: "iris", Instances: []*predictionv1.Instance{{}}}, codes.InvalidArgument, "got 0", "instances[0].features"},
		{"finite but overflowing", &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{3e38, -3e38, 3e38, 3e38})}, codes.InvalidArgument, "too large", ""},
		{"batch over the limit", &predictionv1.PredictRequest{Model: "iris", Instances: instances(tooMany...)}, codes.ResourceExhausted, "the limit is 64", ""},
	}
	ctx := grpctest.Bearer(context.Background(), f.token)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.client.Predict(ctx, tt.req)
			st := grpctest.WantCode(t, err, tt.wantCode)
			if !strings.Contains(st.Message(), tt.wantInMsg) {
				t.Errorf("message %q does not mention %q", st.Message(), tt.wantInMsg)
			}
			if tt.wantField == "" {
				return
			}
			var field string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
					field = br.GetFieldViolations()[0].GetField()
				}
			}
			if field != tt.wantField {
				t.Errorf("BadRequest field = %q, want %q", field, tt.wantField)
			}
		})
	}
	// The service keeps serving after all of that.
	if _, err := f.client.Predict(ctx, &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, 1.4, 0.2})}); err != nil {
		t.Fatalf("after bad requests: %v", err)
	}
}

// P6: a request over the default 4 MiB receive limit.
func TestPredictOversizedMessage(t *testing.T) {
	f := newFixture(t)
	row := make([]float32, 1<<20+1) // > 4 MiB of packed floats
	_, err := f.client.Predict(grpctest.Bearer(context.Background(), f.token), &predictionv1.PredictRequest{Model: "iris", Instances: instances(row)})
	grpctest.WantCode(t, err, codes.ResourceExhausted)
	if _, err := f.client.ListModels(grpctest.Bearer(context.Background(), f.token), &predictionv1.ListModelsRequest{}); err != nil {
		t.Fatalf("after oversized message: %v", err)
	}
}

// P7: a deadline too short to meet.
func TestPredictTinyDeadline(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(grpctest.Bearer(context.Background(), f.token), time.Millisecond)
	defer cancel()
	time.Sleep(2 * time.Millisecond)
	_, err := f.client.Predict(ctx, &predictionv1.PredictRequest{Model: "iris", Instances: instances([]float32{5.1, 3.5, 1.4, 0.2})})
	grpctest.WantCode(t, err, codes.DeadlineExceeded)
}

func TestModels(t *testing.T) {
	f := newFixture(t)
	ctx := grpctest.Bearer(context.Background(), f.token)
	list, err := f.client.ListModels(ctx, &predictionv1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// iris-restricted is hidden from a token without its scope.
	if len(list.GetModels()) != 1 || list.GetModels()[0].GetName() != "iris" {
		t.Fatalf("ListModels = %v", list.GetModels())
	}
	got, err := f.client.GetModel(ctx, &predictionv1.GetModelRequest{Name: "iris"})
	if err != nil {
		t.Fatal(err)
	}
	m := got.GetModel()
	if strings.Join(m.GetFeatureNames(), ",") != "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm" ||
		strings.Join(m.GetLabels(), ",") != "setosa,versicolor,virginica" || m.GetVersion() != "1" {
		t.Fatalf("GetModel = %v", m)
	}
	_, err = f.client.GetModel(ctx, &predictionv1.GetModelRequest{Name: "tulips"})
	grpctest.WantCode(t, err, codes.NotFound)
	_, err = f.client.GetModel(ctx, &predictionv1.GetModelRequest{})
	grpctest.WantCode(t, err, codes.InvalidArgument)
}

// Scopes: each method needs its scope and a restricted model its own; a
// verified caller without them is PERMISSION_DENIED, not UNAUTHENTICATED.
func TestScopes(t *testing.T) {
	f := newFixture(t)
	withScope := func(scope string) context.Context {
		c := f.issuer.Claims("user-1")
		c["scope"] = scope
		return grpctest.Bearer(context.Background(), f.issuer.Sign(t, c))
	}
	predict := func(ctx context.Context, name string) error {
		_, err := f.client.Predict(ctx, &predictionv1.PredictRequest{Model: name, Instances: instances([]float32{5.1, 3.5, 1.4, 0.2})})
		return err
	}
	list := func(ctx context.Context) error {
		_, err := f.client.ListModels(ctx, &predictionv1.ListModelsRequest{})
		return err
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"Predict without predict", func() error { return predict(withScope("models:read"), "iris") }, codes.PermissionDenied},
		{"Predict with no scope at all", func() error { return predict(withScope(""), "iris") }, codes.PermissionDenied},
		{"Predict with predict", func() error { return predict(withScope("predict"), "iris") }, codes.OK},
		{"ListModels without models:read", func() error { return list(withScope("predict")) }, codes.PermissionDenied},
		{"restricted model without its scope", func() error { return predict(withScope("predict models:read"), "iris-restricted") }, codes.PermissionDenied},
		{"restricted model with its scope", func() error { return predict(withScope("predict predict:restricted"), "iris-restricted") }, codes.OK},
		{"GetModel of restricted model without its scope", func() error {
			_, err := f.client.GetModel(withScope("models:read"), &predictionv1.GetModelRequest{Name: "iris-restricted"})
			return err
		}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { grpctest.WantCode(t, tt.call(), tt.want) })
	}
	all, err := f.client.ListModels(withScope("models:read predict:restricted"), &predictionv1.ListModelsRequest{})
	if err != nil || len(all.GetModels()) != 2 {
		t.Fatalf("ListModels with the restricted scope = %v, %v; want both models", all, err)
	}
}
