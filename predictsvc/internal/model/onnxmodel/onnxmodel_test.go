package onnxmodel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/mlgate/mlgate/models"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/modeltest"
	"github.com/mlgate/mlgate/predictsvc/internal/model/onnxmodel"
)

// goldenTolerance is how far gonnx's float32 run may stray from sklearn's
// float64 predict_proba.
const goldenTolerance = 1e-4

type goldenRow struct {
	Features      []float32 `json:"features"`
	Probabilities []float64 `json:"probabilities"`
	Label         string    `json:"label"`
}

func readGolden(t testing.TB) []goldenRow {
	t.Helper()
	raw, err := fs.ReadFile(models.Bundled(), "iris/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []goldenRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 13 {
		t.Fatalf("golden.json has %d rows, want at least 13", len(rows))
	}
	return rows
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

func checkGolden(t *testing.T, labels []string, want goldenRow, got []float32) {
	t.Helper()
	if len(got) != len(want.Probabilities) {
		t.Fatalf("features %v: got %d probabilities, want %d", want.Features, len(got), len(want.Probabilities))
	}
	for j, p := range want.Probabilities {
		if math.Abs(float64(got[j])-p) > goldenTolerance {
			t.Errorf("features %v: probability[%d] (%s) = %v, want %v ± %g", want.Features, j, labels[j], got[j], p, goldenTolerance)
		}
	}
	if label := labels[argmax(got)]; label != want.Label {
		t.Errorf("features %v: label %s, want %s", want.Features, label, want.Label)
	}
}

func TestInfo(t *testing.T) {
	info := modeltest.Iris(t).Info()
	if info.Name != "iris" || info.Version != "1" || info.Description == "" {
		t.Errorf("info = %+v", info)
	}
	if want := []string{"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"}; !slices.Equal(info.FeatureNames, want) {
		t.Errorf("feature names %q, want %q", info.FeatureNames, want)
	}
	if want := []string{"setosa", "versicolor", "virginica"}; !slices.Equal(info.Labels, want) {
		t.Errorf("labels %q, want %q", info.Labels, want)
	}
}

func TestGoldenVectors(t *testing.T) {
	m := modeltest.Iris(t)
	labels := m.Info().Labels
	golden := readGolden(t)

	t.Run("named rows", func(t *testing.T) {
		for _, tc := range []struct {
			features []float32
			label    string
		}{
			{[]float32{5.1, 3.5, 1.4, 0.2}, "setosa"},
			{[]float32{6.4, 3.2, 4.5, 1.5}, "versicolor"},
			{[]float32{6.3, 3.3, 6.0, 2.5}, "virginica"},
		} {
			got, err := m.Predict(context.Background(), [][]float32{tc.features})
			if err != nil {
				t.Fatal(err)
			}
			if label := labels[argmax(got[0])]; label != tc.label {
				t.Errorf("%v: label %s, want %s (probabilities %v)", tc.features, label, tc.label, got[0])
			}
		}
	})

	t.Run("singly", func(t *testing.T) {
		for _, row := range golden {
			got, err := m.Predict(context.Background(), [][]float32{row.Features})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d rows for 1 input", len(got))
			}
			checkGolden(t, labels, row, got[0])
		}
	})

	t.Run("one batch", func(t *testing.T) {
		batch := make([][]float32, len(golden))
		for i, row := range golden {
			batch[i] = row.Features
		}
		got, err := m.Predict(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(golden) {
			t.Fatalf("got %d rows for %d inputs", len(got), len(golden))
		}
		for i, row := range golden {
			checkGolden(t, labels, row, got[i])
		}
	})
}

// batchOf cycles through the golden rows to make a batch of n.
func batchOf(golden []goldenRow, n int) [][]float32 {
	batch := make([][]float32, n)
	for i := range batch {
		batch[i] = golden[i%len(golden)].Features
	}
	return batch
}

func TestBatchSizesMatchSingleRuns(t *testing.T) {
	m := modeltest.Iris(t)
	golden := readGolden(t)
	single := make([][]float32, len(golden))
	for i, row := range golden {
		got, err := m.Predict(context.Background(), [][]float32{row.Features})
		if err != nil {
			t.Fatal(err)
		}
		single[i] = got[0]
	}
	for _, n := range []int{1, 8, 64} {
		t.Run(fmt.Sprint("batch ", n), func(t *testing.T) {
			got, err := m.Predict(context.Background(), batchOf(golden, n))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("got %d rows, want %d", len(got), n)
			}
			for i, row := range got {
				want := single[i%len(golden)]
				for j := range want {
					if math.Abs(float64(row[j]-want[j])) > 1e-6 {
						t.Errorf("row %d: %v, alone it gives %v", i, row, want)
						break
					}
				}
			}
		})
	}
}

// gorgonia's SoftMax turns a batch row NaN when its logits are far from the
// batch's first element; the adapter reruns such rows alone.
func TestBatchWithFarApartLogits(t *testing.T) {
	m := modeltest.Iris(t)
	far := []float32{5, 3, -100, -100} // finite, absurd petals: an overwhelming setosa
	alone, err := m.Predict(context.Background(), [][]float32{far})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Predict(context.Background(), [][]float32{{5.1, 3.5, 1.4, 0.2}, far, {6.3, 3.3, 6.0, 2.5}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[1], alone[0]) {
		t.Errorf("in a batch %v, alone %v", got[1], alone[0])
	}
	if argmax(got[0]) != 0 || argmax(got[1]) != 0 || argmax(got[2]) != 2 {
		t.Errorf("labels wrong: %v", got)
	}
}

func TestPredictErrors(t *testing.T) {
	m := modeltest.Iris(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		batch  [][]float32
		target error
		text   string
	}{
		{"canceled context", canceled, [][]float32{{5.1, 3.5, 1.4, 0.2}}, context.Canceled, ""},
		{"overflowing input", context.Background(), [][]float32{{5.1, 3.5, 1.4, 0.2}, {3e38, 3e38, 3e38, 3e38}}, model.ErrOutOfRange, "row 1"},
		{"wrong feature count", context.Background(), [][]float32{{5.1, 3.5, 1.4}}, nil, "row 0 has 3 features, want 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Predict(tc.ctx, tc.batch)
			if err == nil {
				t.Fatalf("no error; got %v", got)
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("error %q does not wrap %q", err, tc.target)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
		})
	}
	// The model keeps answering after those.
	if _, err := m.Predict(context.Background(), [][]float32{{5.1, 3.5, 1.4, 0.2}}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPredict(t *testing.T) {
	m := modeltest.Iris(t)
	labels := m.Info().Labels
	golden := readGolden(t)
	const goroutines, rounds = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				n := 1 + (g+r)%len(golden)
				start := (g * r) % len(golden)
				batch := make([][]float32, n)
				for i := range batch {
					batch[i] = golden[(start+i)%len(golden)].Features
				}
				got, err := m.Predict(context.Background(), batch)
				if err != nil {
					errs <- err
					return
				}
				for i, row := range got {
					want := golden[(start+i)%len(golden)]
					for j, p := range want.Probabilities {
						if math.Abs(float64(row[j])-p) > goldenTolerance || labels[argmax(row)] != want.Label {
							errs <- fmt.Errorf("goroutine %d round %d row %d: %v, want %v", g, r, i, row, want.Probabilities)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// variant returns the bundled graph changed by edit, serialised.
func variant(t *testing.T, file []byte, edit func(*onnx.ModelProto)) []byte {
	t.Helper()
	var mp onnx.ModelProto
	if err := proto.Unmarshal(file, &mp); err != nil {
		t.Fatal(err)
	}
	edit(&mp)
	out, err := proto.Marshal(&mp)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenErrors(t *testing.T) {
	meta, file := modeltest.IrisFiles(t)
	withMeta := func(edit func(*model.Metadata)) model.Metadata {
		m := meta
		m.FeatureNames = slices.Clone(meta.FeatureNames)
		m.Labels = slices.Clone(meta.Labels)
		edit(&m)
		return m
	}
	inputDims := func(mp *onnx.ModelProto) []*onnx.TensorShapeProto_Dimension {
		return mp.GetGraph().GetInput()[0].GetType().GetTensorType().GetShape().GetDim()
	}
	for _, tc := range []struct {
		name string
		meta model.Metadata
		file []byte
		want string
	}{
		{
			name: "metadata lists 3 features, graph takes 4",
			meta: withMeta(func(m *model.Metadata) { m.FeatureNames = m.FeatureNames[:3] }),
			file: file,
			want: "the graph takes 4 features, metadata lists 3",
		},
		{
			name: "metadata lists 5 features",
			meta: withMeta(func(m *model.Metadata) { m.FeatureNames = append(m.FeatureNames, "stem_length_cm") }),
			file: file,
			want: "the graph takes 4 features, metadata lists 5",
		},
		{
			name: "metadata lists 2 labels, graph yields 3",
			meta: withMeta(func(m *model.Metadata) { m.Labels = m.Labels[:2] }),
			file: file,
			want: "the graph yields 3 probabilities, metadata lists 2 labels",
		},
		{
			name: "wrong input name",
			meta: withMeta(func(m *model.Metadata) { m.Input = "x" }),
			file: file,
			want: `the graph takes ["features"], metadata names "x"`,
		},
		{
			name: "wrong output name",
			meta: withMeta(func(m *model.Metadata) { m.Output = "label" }),
			file: file,
			want: `no output "label"`,
		},
		{
			name: "no input name",
			meta: withMeta(func(m *model.Metadata) { m.Input = "" }),
			file: file,
			want: "input and output must name",
		},
		{
			name: "invalid metadata",
			meta: withMeta(func(m *model.Metadata) { m.Name = "" }),
			file: file,
			want: "name: must not be empty",
		},
		{
			name: "not an ONNX file",
			meta: meta,
			file: []byte("this is not protobuf \xff\xff\xff"),
			want: "parse ONNX model",
		},
		{
			name: "opset 12",
			meta: meta,
			file: variant(t, file, func(mp *onnx.ModelProto) { mp.OpsetImport[0].Version = 12 }),
			want: "opset 13 only",
		},
		{
			name: "operator gonnx lacks",
			meta: meta,
			file: variant(t, file, func(mp *onnx.ModelProto) { mp.Graph.Node[3].OpType = "LogSoftmax" }),
			want: `gonnx cannot run operator "LogSoftmax"`,
		},
		{
			name: "double input",
			meta: meta,
			file: variant(t, file, func(mp *onnx.ModelProto) {
				mp.Graph.Input[0].Type.GetTensorType().ElemType = int32(onnx.TensorProto_DOUBLE)
			}),
			want: "element type is DOUBLE, want FLOAT",
		},
		{
			name: "batch fixed at 2",
			meta: meta,
			file: variant(t, file, func(mp *onnx.ModelProto) {
				inputDims(mp)[0].Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: 2}
			}),
			want: "batch dimension is fixed at 2",
		},
		{
			name: "declared shape lies about the weights",
			meta: withMeta(func(m *model.Metadata) { m.FeatureNames = m.FeatureNames[:3] }),
			file: variant(t, file, func(mp *onnx.ModelProto) {
				inputDims(mp)[1].Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: 3}
			}),
			want: "trial run on a zero vector",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := onnxmodel.Open(tc.meta, tc.file)
			if err == nil {
				t.Fatalf("opened: %+v", m.Info())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// A graph whose batch dimension is fixed at 1 still serves whole batches, a row at a time.
func TestBatchFixedAtOne(t *testing.T) {
	meta, file := modeltest.IrisFiles(t)
	fixed := variant(t, file, func(mp *onnx.ModelProto) {
		dim := mp.GetGraph().GetInput()[0].GetType().GetTensorType().GetShape().GetDim()[0]
		dim.Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: 1}
	})
	m, err := onnxmodel.Open(meta, fixed)
	if err != nil {
		t.Fatal(err)
	}
	golden := readGolden(t)
	got, err := m.Predict(context.Background(), batchOf(golden, 8))
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range got {
		checkGolden(t, meta.Labels, golden[i], row)
	}
}

// BenchmarkPredict runs the bundled Iris model on its plan (as served) and,
// for comparison, on gonnx.
func BenchmarkPredict(b *testing.B) {
	meta, file := modeltest.IrisFiles(b)
	onGonnx, err := onnxmodel.OpenOnGonnx(meta, file)
	if err != nil {
		b.Fatal(err)
	}
	golden := readGolden(b)
	for _, runner := range []struct {
		name string
		m    model.Model
	}{{"plan", modeltest.Iris(b)}, {"gonnx", onGonnx}} {
		for _, n := range []int{1, 8, 64} {
			batch := batchOf(golden, n)
			b.Run(fmt.Sprintf("%s/batch=%d", runner.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := runner.m.Predict(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
