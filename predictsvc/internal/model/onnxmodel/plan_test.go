package onnxmodel_test

import (
	"context"
	"math"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/modeltest"
	"github.com/mlgate/mlgate/predictsvc/internal/model/onnxmodel"
)

// graphSpec is a small classifier graph built in the test: input "x" of
// width features, output "y" of width labels.
type graphSpec struct {
	features, labels int
	nodes            []*onnx.NodeProto
	params           map[string][]int64 // initializer name -> shape (values generated)
}

func node(op string, in []string, out string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{Name: out, OpType: op, Input: in, Output: []string{out}, Attribute: attrs}
}

func intAttr(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func floatAttr(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

func matrixValue(name string, rows, cols int64) *onnx.ValueInfoProto {
	dim := func(v int64) *onnx.TensorShapeProto_Dimension {
		if v == 0 {
			return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}}
		}
		return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
		ElemType: int32(onnx.TensorProto_FLOAT),
		Shape:    &onnx.TensorShapeProto{Dim: []*onnx.TensorShapeProto_Dimension{dim(rows), dim(cols)}},
	}}}}
}

// build returns the metadata and ONNX bytes of the graph, its initializers
// filled with fixed pseudo-random values in [-1, 1].
func (g graphSpec) build(t *testing.T) (model.Metadata, []byte) {
	t.Helper()
	graph := &onnx.GraphProto{
		Name:   "test",
		Node:   g.nodes,
		Input:  []*onnx.ValueInfoProto{matrixValue("x", 0, int64(g.features))},
		Output: []*onnx.ValueInfoProto{matrixValue("y", 0, int64(g.labels))},
	}
	seed := uint32(7)
	for name, shape := range g.params {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		values := make([]float32, n)
		for i := range values {
			seed = seed*1664525 + 1013904223
			values[i] = float32(seed>>8)/float32(1<<24)*2 - 1
		}
		graph.Initializer = append(graph.Initializer, &onnx.TensorProto{
			Name: name, Dims: shape, DataType: int32(onnx.TensorProto_FLOAT), FloatData: values,
		})
	}
	file, err := proto.Marshal(&onnx.ModelProto{
		IrVersion:   7,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: 13}},
		Graph:       graph,
	})
	if err != nil {
		t.Fatal(err)
	}
	meta := model.Metadata{Name: "test", Version: "1", Format: "onnx", File: "model.onnx", Input: "x", Output: "y"}
	for i := range g.features {
		meta.FeatureNames = append(meta.FeatureNames, "f"+string(rune('a'+i)))
	}
	for i := range g.labels {
		meta.Labels = append(meta.Labels, "l"+string(rune('a'+i)))
	}
	return meta, file
}

func probeRows(n, width int) [][]float32 {
	rows := make([][]float32, n)
	seed := uint32(99)
	for r := range rows {
		rows[r] = make([]float32, width)
		for i := range rows[r] {
			seed = seed*1103515245 + 12345
			rows[r][i] = (float32(seed>>8)/float32(1<<24)*2 - 1) * 4
		}
	}
	return rows
}

// samePredictions runs rows through a and b and fails on any difference
// beyond float32 rounding; a plan must also answer a row alike alone and in a
// batch.
func samePredictions(t *testing.T, a, b model.Model, rows [][]float32) {
	t.Helper()
	ctx := context.Background()
	for _, row := range rows {
		// Row by row: gonnx's batched Softmax can be wrong (see Predict).
		got, err := a.Predict(ctx, [][]float32{row})
		if err != nil {
			t.Fatal(err)
		}
		want, err := b.Predict(ctx, [][]float32{row})
		if err != nil {
			t.Fatal(err)
		}
		for j := range want[0] {
			if d := math.Abs(float64(got[0][j] - want[0][j])); d > 1e-5 {
				t.Fatalf("row %v: plan %v, gonnx %v", row, got[0], want[0])
			}
		}
	}
	if !onnxmodel.RunsOnPlan(a) {
		return
	}
	batch, err := a.Predict(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows {
		alone, _ := a.Predict(ctx, [][]float32{row})
		for j := range alone[0] {
			if batch[i][j] != alone[0][j] {
				t.Fatalf("row %d: in a batch %v, alone %v", i, batch[i], alone[0])
			}
		}
	}
}

func TestPlanMatchesGonnx(t *testing.T) {
	tests := []struct {
		name     string
		spec     graphSpec
		wantPlan bool
	}{
		{
			name: "MLP: MatMul, Add, Relu, MatMul, Add, Softmax",
			spec: graphSpec{features: 5, labels: 3, params: map[string][]int64{"w1": {5, 8}, "b1": {8}, "w2": {8, 3}, "b2": {1, 3}},
				nodes: []*onnx.NodeProto{
					node("MatMul", []string{"x", "w1"}, "h1"), node("Add", []string{"h1", "b1"}, "h2"),
					node("Relu", []string{"h2"}, "h3"), node("MatMul", []string{"h3", "w2"}, "h4"),
					node("Add", []string{"b2", "h4"}, "h5"), node("Softmax", []string{"h5"}, "y", intAttr("axis", -1)),
				}},
			wantPlan: true,
		},
		{
			name: "Gemm without transB, alpha, beta, scalar bias; constant on the left",
			spec: graphSpec{features: 4, labels: 2, params: map[string][]int64{"c": {4}, "w": {4, 2}, "bias": {}},
				nodes: []*onnx.NodeProto{
					node("Sub", []string{"c", "x"}, "h1"), node("Mul", []string{"h1", "h1"}, "h2"),
					node("Gemm", []string{"h2", "w", "bias"}, "h3", floatAttr("alpha", 0.5), floatAttr("beta", 2)),
					node("Sigmoid", []string{"h3"}, "y"),
				}},
			wantPlan: true,
		},
		{
			name: "Gemm with transB and no bias, Div by a scalar, two activations added",
			spec: graphSpec{features: 3, labels: 4, params: map[string][]int64{"w": {4, 3}, "s": {1}},
				nodes: []*onnx.NodeProto{
					node("Div", []string{"x", "s"}, "h1"), node("Gemm", []string{"h1", "w"}, "h2", intAttr("transB", 1)),
					node("Add", []string{"h2", "h2"}, "h3"), node("Softmax", []string{"h3"}, "y", intAttr("axis", 1)),
				}},
			wantPlan: true,
		},
		{
			name: "a branch the output does not need is left out",
			spec: graphSpec{features: 2, labels: 2, params: map[string][]int64{"w": {2, 2}},
				nodes: []*onnx.NodeProto{
					node("MatMul", []string{"x", "w"}, "h1"), node("Softmax", []string{"h1"}, "y"),
					node("Tanh", []string{"h1"}, "unused"),
				}},
			wantPlan: true,
		},
		{
			name: "an operator the plan does not know runs on gonnx",
			spec: graphSpec{features: 2, labels: 2, params: map[string][]int64{"w": {2, 2}},
				nodes: []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, "h1"), node("Tanh", []string{"h1"}, "h2"), node("Softmax", []string{"h2"}, "y")}},
			wantPlan: false,
		},
		{
			name: "a Softmax across the batch runs on gonnx",
			spec: graphSpec{features: 2, labels: 2, params: map[string][]int64{"w": {2, 2}},
				nodes: []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, "h1"), node("Softmax", []string{"h1"}, "y", intAttr("axis", 0))}},
			wantPlan: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta, file := tt.spec.build(t)
			withPlan, err := onnxmodel.Open(meta, file)
			if err != nil {
				t.Fatal(err)
			}
			if got := onnxmodel.RunsOnPlan(withPlan); got != tt.wantPlan {
				t.Fatalf("runs on a plan: %v, want %v", got, tt.wantPlan)
			}
			onGonnx, err := onnxmodel.OpenOnGonnx(meta, file)
			if err != nil {
				t.Fatal(err)
			}
			samePredictions(t, withPlan, onGonnx, probeRows(12, tt.spec.features))
		})
	}
}

func TestIrisRunsOnAPlanThatAgreesWithGonnx(t *testing.T) {
	meta, file := modeltest.IrisFiles(t)
	withPlan, err := onnxmodel.Open(meta, file)
	if err != nil {
		t.Fatal(err)
	}
	if !onnxmodel.RunsOnPlan(withPlan) {
		t.Fatal("the bundled Iris graph (Sub, Div, Gemm, Softmax) does not run on a plan")
	}
	onGonnx, err := onnxmodel.OpenOnGonnx(meta, file)
	if err != nil {
		t.Fatal(err)
	}
	samePredictions(t, withPlan, onGonnx, probeRows(50, 4))
}

// A plan that computes something else than gonnx is refused.
func TestDisagreeingPlanIsRefused(t *testing.T) {
	meta, file := modeltest.IrisFiles(t)
	m, err := onnxmodel.Open(meta, file)
	if err != nil {
		t.Fatal(err)
	}
	asCompiled, altered := onnxmodel.PlanAgreement(m)
	if !asCompiled {
		t.Fatal("the compiled plan should agree with gonnx")
	}
	if altered {
		t.Error("a plan with altered weights still agrees with gonnx")
	}
}
