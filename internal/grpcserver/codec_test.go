package grpcserver

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/mlgate/mlgate/gen/go/auth/v1"
	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
)

// repeatedEmpty is n copies of field num as an empty length-delimited value:
// two bytes each on the wire.
func repeatedEmpty(num protowire.Number, n int) []byte {
	var b []byte
	for range n {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, nil)
	}
	return b
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWithinBudget(t *testing.T) {
	manyFeatures := make([]float32, 1<<16)
	tests := []struct {
		name   string
		md     protoreflect.MessageDescriptor
		wire   []byte
		budget int
		want   bool
	}{
		{"instances up to the budget", (&predictionv1.PredictRequest{}).ProtoReflect().Descriptor(), repeatedEmpty(2, 10), 10, true},
		{"one instance past it", (&predictionv1.PredictRequest{}).ProtoReflect().Descriptor(), repeatedEmpty(2, 11), 10, false},
		{"packed features cost nothing", (&predictionv1.PredictRequest{}).ProtoReflect().Descriptor(),
			mustMarshal(t, &predictionv1.PredictRequest{Model: "iris", Instances: []*predictionv1.Instance{{Features: manyFeatures}}}), 1, true},
		{"repeated strings count", (&authv1.SetUserRolesRequest{}).ProtoReflect().Descriptor(), repeatedEmpty(2, 11), 10, false},
		{"a plain string does not", (&authv1.LoginRequest{}).ProtoReflect().Descriptor(), repeatedEmpty(1, 11), 10, true},
		{"unknown fields do not", (&authv1.LoginRequest{}).ProtoReflect().Descriptor(), repeatedEmpty(99, 11), 10, true},
		{"truncated bytes are left to the decoder", (&predictionv1.PredictRequest{}).ProtoReflect().Descriptor(), []byte{0x12, 0x7f}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := tt.budget
			if got := withinBudget(tt.wire, tt.md, &budget, 0); got != tt.want {
				t.Errorf("withinBudget = %v, want %v", got, tt.want)
			}
		})
	}
}
