// Package onnxmodel runs ONNX classifiers in process, in pure Go, with gonnx
// (github.com/advancedclimatesystems/gonnx v1.1.0, which knows opset 13 only).
//
// A model takes one float32 input of shape [batch, features] and yields one
// float32 output of shape [batch, labels] holding probabilities. The batch
// dimension may be symbolic (the whole batch runs at once) or fixed at 1 (rows
// run one by one).
//
// gonnx parses and checks every graph. Graphs made of the operators small
// dense classifiers use (Gemm, MatMul, Add, Sub, Mul, Div, Relu, Sigmoid,
// Softmax) then run on a plan (plan.go) that computes the same numbers some
// fifty times faster; every other graph runs on gonnx itself.
package onnxmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"

	"github.com/advancedclimatesystems/gonnx"
	"github.com/advancedclimatesystems/gonnx/onnx"
	"gorgonia.org/tensor"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
)

// onnxModel is a model.Model backed by a pool of gonnx instances.
type onnxModel struct {
	info       model.Info
	input      string
	output     string
	nFeatures  int
	nLabels    int
	rowAtATime bool  // the graph's batch dimension is fixed at 1 (gonnx only)
	plan       *plan // runs the graph without gonnx, when it can
	pool       *instancePool
}

// Open checks that the ONNX graph in file agrees with meta (input and output
// names, element type float32, feature and label counts, operators gonnx
// knows), runs it once on a zero vector, and returns the ready model. A graph
// made only of operators a plan knows runs on a plan, once the plan has been
// seen to agree with gonnx; any other graph runs on gonnx.
func Open(meta model.Metadata, file []byte) (model.Model, error) {
	return open(meta, file, true)
}

func open(meta model.Metadata, file []byte, allowPlan bool) (*onnxModel, error) {
	if err := meta.Validate(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if meta.Input == "" || meta.Output == "" {
		return nil, errors.New("metadata: input and output must name the graph's input and output tensors")
	}
	proto, err := parse(file)
	if err != nil {
		return nil, err
	}
	rowAtATime, err := checkGraph(proto, meta)
	if err != nil {
		return nil, fmt.Errorf("graph does not match %s: %w", model.MetadataFile, err)
	}
	first, err := instantiate(proto)
	if err != nil {
		return nil, err
	}
	for _, n := range proto.GetGraph().GetNode() {
		if _, err := first.GetOperator(n.GetOpType()); err != nil {
			return nil, fmt.Errorf("node %q: gonnx cannot run operator %q: %w", n.GetName(), n.GetOpType(), err)
		}
	}

	m := &onnxModel{
		info:       meta.Info(),
		input:      meta.Input,
		output:     meta.Output,
		nFeatures:  len(meta.FeatureNames),
		nLabels:    len(meta.Labels),
		rowAtATime: rowAtATime,
		pool:       newInstancePool(file, first, runtime.GOMAXPROCS(0)),
	}
	if allowPlan {
		if p, err := compilePlan(proto.GetGraph(), m.input, m.nFeatures, m.output, m.nLabels); err == nil && m.agrees(p) {
			m.plan, m.rowAtATime = p, false
		}
	}
	// A trial run catches graphs whose declared shapes lie about what they compute.
	if _, err := m.Predict(context.Background(), [][]float32{make([]float32, m.nFeatures)}); err != nil {
		return nil, fmt.Errorf("trial run on a zero vector: %w", err)
	}
	return m, nil
}

func (m *onnxModel) Info() model.Info {
	info := m.info
	info.FeatureNames = slices.Clone(info.FeatureNames)
	info.Labels = slices.Clone(info.Labels)
	return info
}

func (m *onnxModel) Predict(ctx context.Context, batch [][]float32) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	features := make([]float32, 0, len(batch)*m.nFeatures)
	for i, row := range batch {
		if len(row) != m.nFeatures {
			return nil, fmt.Errorf("model %q: row %d has %d features, want %d", m.info.Name, i, len(row), m.nFeatures)
		}
		features = append(features, row...)
	}

	probs := make([]float32, len(batch)*m.nLabels)
	if m.rowAtATime {
		for i := range batch {
			if err := m.runRows(ctx, m.featureRow(features, i), m.labelRow(probs, i)); err != nil {
				return nil, err
			}
		}
	} else if err := m.runRows(ctx, features, probs); err != nil {
		return nil, err
	}

	for i := range batch {
		if allFinite(m.labelRow(probs, i)) {
			continue
		}
		// gorgonia's SoftMax (tensor v0.9.24, softMaxLastDimF32) starts every
		// row's running maximum at the batch's very first element, so a row whose
		// logits lie far (about 88, float32's exp range) from that element comes
		// out NaN when run in a batch, but right when run alone. Rerun it alone.
		if len(batch) > 1 && !m.rowAtATime && m.plan == nil {
			if err := m.runRows(ctx, m.featureRow(features, i), m.labelRow(probs, i)); err != nil {
				return nil, err
			}
		}
		if !allFinite(m.labelRow(probs, i)) {
			return nil, fmt.Errorf("model %q: row %d: %w", m.info.Name, i, model.ErrOutOfRange)
		}
	}

	out := make([][]float32, len(batch))
	for i := range out {
		out[i] = m.labelRow(probs, i)
	}
	return out, nil
}

func (m *onnxModel) featureRow(features []float32, i int) []float32 {
	return features[i*m.nFeatures : (i+1)*m.nFeatures : (i+1)*m.nFeatures]
}

func (m *onnxModel) labelRow(probs []float32, i int) []float32 {
	return probs[i*m.nLabels : (i+1)*m.nLabels : (i+1)*m.nLabels]
}

// runRows runs the graph on the rows in features (row-major, nFeatures each)
// and writes the probabilities (nLabels each) into probs.
func (m *onnxModel) runRows(ctx context.Context, features, probs []float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.plan != nil {
		m.plan.run(features, len(features)/m.nFeatures, probs)
		return nil
	}
	return m.runGonnx(ctx, features, probs)
}

// agrees reports whether p computes what gonnx does, on probe rows of several
// magnitudes, to within float32 rounding (the two sum in other orders).
func (m *onnxModel) agrees(p *plan) bool {
	const rows = 9
	features := make([]float32, rows*m.nFeatures)
	seed := uint32(1)
	for i := m.nFeatures; i < len(features); i++ { // row 0 stays zero
		seed = seed*1664525 + 1013904223
		scale := []float32{0.5, 3, 30}[i/m.nFeatures%3]
		features[i] = scale * (float32(seed>>8)/float32(1<<24)*2 - 1)
	}
	got := make([]float32, rows*m.nLabels)
	p.run(features, rows, got)
	want := make([]float32, m.nLabels)
	for r := range rows {
		// gonnx row by row: its batched Softmax can be wrong (see Predict).
		if err := m.runGonnx(context.Background(), m.featureRow(features, r), want); err != nil || !allFinite(want) {
			continue
		}
		for j, w := range want {
			if g := m.labelRow(got, r)[j]; !(math.Abs(float64(g-w)) <= 1e-5+1e-4*math.Abs(float64(w))) {
				return false
			}
		}
	}
	return true
}

// runGonnx is runRows on a gonnx instance.
func (m *onnxModel) runGonnx(ctx context.Context, features, probs []float32) error {
	inst, err := m.pool.get(ctx)
	if err != nil {
		return err
	}
	n := len(features) / m.nFeatures
	// gonnx keeps the input tensor's backing array; features is ours alone.
	in := tensor.New(tensor.WithShape(n, m.nFeatures), tensor.WithBacking(features))
	outputs, err := run(inst, gonnx.Tensors{m.input: in})
	if err != nil {
		// A failed or panicked run may have left the instance half-changed.
		m.pool.discard()
		return fmt.Errorf("model %q: %w", m.info.Name, err)
	}
	m.pool.put(inst)

	out, ok := outputs[m.output]
	if !ok || out == nil {
		return fmt.Errorf("model %q: graph produced no output %q", m.info.Name, m.output)
	}
	if shape := out.Shape(); len(shape) != 2 || shape[0] != n || shape[1] != m.nLabels {
		return fmt.Errorf("model %q: output %q has shape %v, want [%d %d]", m.info.Name, m.output, shape, n, m.nLabels)
	}
	if dense, ok := out.(*tensor.Dense); ok && dense.RequiresIterator() {
		out = dense.Materialize()
	}
	data, ok := out.Data().([]float32)
	if !ok || len(data) != len(probs) {
		return fmt.Errorf("model %q: output %q holds %T, want %d float32 values", m.info.Name, m.output, out.Data(), len(probs))
	}
	copy(probs, data)
	return nil
}

// run calls gonnx, turning a panic inside it into an error so that one bad
// model or input cannot take the server down.
func run(inst *gonnx.Model, inputs gonnx.Tensors) (outputs gonnx.Tensors, err error) {
	defer func() {
		if r := recover(); r != nil {
			outputs, err = nil, fmt.Errorf("gonnx run panicked: %v", r)
		}
	}()
	outputs, err = inst.Run(inputs)
	if err != nil {
		return nil, fmt.Errorf("gonnx run: %w", err)
	}
	return outputs, nil
}

func parse(file []byte) (proto *onnx.ModelProto, err error) {
	defer func() {
		if r := recover(); r != nil {
			proto, err = nil, fmt.Errorf("parse ONNX model: gonnx panicked: %v", r)
		}
	}()
	proto, err = gonnx.ModelProtoFromBytes(file)
	if err != nil {
		return nil, fmt.Errorf("parse ONNX model: %w", err)
	}
	if proto.GetGraph() == nil {
		return nil, errors.New("parse ONNX model: the file holds no graph")
	}
	return proto, nil
}

// instantiate builds a gonnx model from a parsed proto. gonnx may use the
// proto's float data as a tensor's backing array, so each instance needs a
// proto of its own.
func instantiate(proto *onnx.ModelProto) (inst *gonnx.Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			inst, err = nil, fmt.Errorf("load ONNX model: gonnx panicked: %v", r)
		}
	}()
	inst, err = gonnx.NewModel(proto)
	if err != nil {
		var opsets []string
		for _, o := range proto.GetOpsetImport() {
			opsets = append(opsets, fmt.Sprintf("%q %d", o.GetDomain(), o.GetVersion()))
		}
		return nil, fmt.Errorf("load ONNX model (imports opset %s; gonnx runs opset 13 only): %w", strings.Join(opsets, ", "), err)
	}
	return inst, nil
}

// checkGraph checks the graph's one input and the named output against the
// metadata. It reports whether the batch dimension is fixed at 1, which means
// rows must run one at a time.
func checkGraph(proto *onnx.ModelProto, meta model.Metadata) (rowAtATime bool, err error) {
	graph := proto.GetGraph()
	params := make(map[string]bool)
	for _, name := range graph.ParamNames() {
		params[name] = true
	}
	// Initializers may be listed as inputs too (older exporters do); they are not fed.
	var inputs []*onnx.ValueInfoProto
	for _, in := range graph.GetInput() {
		if !params[in.GetName()] {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 || inputs[0].GetName() != meta.Input {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.GetName()
		}
		return false, fmt.Errorf("input: the graph takes %q, metadata names %q; want exactly that one input", names, meta.Input)
	}
	batch, features, err := matrixShape("input", inputs[0])
	if err != nil {
		return false, err
	}
	if features != int64(len(meta.FeatureNames)) {
		return false, fmt.Errorf("input %q: the graph takes %s features, metadata lists %d", meta.Input, dimString(features), len(meta.FeatureNames))
	}
	if batch > 1 {
		return false, fmt.Errorf("input %q: batch dimension is fixed at %d; want it symbolic or 1", meta.Input, batch)
	}

	var output *onnx.ValueInfoProto
	for _, out := range graph.GetOutput() {
		if out.GetName() == meta.Output {
			output = out
		}
	}
	if output == nil {
		return false, fmt.Errorf("output: the graph has no output %q (it has %q)", meta.Output, graph.OutputNames())
	}
	_, labels, err := matrixShape("output", output)
	if err != nil {
		return false, err
	}
	if labels != int64(len(meta.Labels)) {
		return false, fmt.Errorf("output %q: the graph yields %s probabilities, metadata lists %d labels", meta.Output, dimString(labels), len(meta.Labels))
	}
	return batch == 1, nil
}

// matrixShape wants a float32 tensor of rank 2 and returns its two dimensions,
// 0 standing for a symbolic one (as in gonnx).
func matrixShape(role string, v *onnx.ValueInfoProto) (rows, cols int64, err error) {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return 0, 0, fmt.Errorf("%s %q: not a tensor", role, v.GetName())
	}
	if tt.GetElemType() != int32(onnx.TensorProto_FLOAT) {
		return 0, 0, fmt.Errorf("%s %q: element type is %s, want FLOAT",
			role, v.GetName(), onnx.TensorProto_DataType(tt.GetElemType()))
	}
	dims := tt.GetShape().GetDim()
	if len(dims) != 2 {
		return 0, 0, fmt.Errorf("%s %q: rank %d, want 2 ([batch, n])", role, v.GetName(), len(dims))
	}
	return dims[0].GetDimValue(), dims[1].GetDimValue(), nil
}

func dimString(n int64) string {
	if n == 0 {
		return "a symbolic number of"
	}
	return fmt.Sprint(n)
}

func allFinite(values []float32) bool {
	for _, v := range values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// instancePool lends each concurrent run a gonnx model of its own.
//
// Why not share one: gonnx's Model.Run builds a fresh tensor map and fresh
// operators per call and, for the operators the bundled Iris graph uses (Sub,
// Div, Gemm, Softmax), only reads the shared initializer tensors, so sharing
// would pass -race today. But nothing in gonnx promises that, and some of its
// operators change inputs in place (Conv reshapes its bias, RNN/GRU/LSTM
// reshape their initial states), which for an initializer would be a data race
// between runs. Any graph can come from --model-dir, so each run gets an
// instance nobody else is using, at the cost of one copy of the weights per
// instance. Instances are made on first need, up to max (GOMAXPROCS by
// default): a mutex would serialise every prediction on one core instead.
type instancePool struct {
	file  []byte
	slots chan struct{}     // one token per instance in use; cap is the pool size
	idle  chan *gonnx.Model // instances not in use; never holds more than cap(slots)
}

func newInstancePool(file []byte, first *gonnx.Model, size int) *instancePool {
	size = max(size, 1)
	p := &instancePool{
		file:  file,
		slots: make(chan struct{}, size),
		idle:  make(chan *gonnx.Model, size),
	}
	p.idle <- first
	return p
}

// get takes a slot, waiting for one while ctx allows, then an idle instance or
// a new one. Holding a slot per instance in use keeps the instance count at or
// below the pool size, so put never blocks.
func (p *instancePool) get(ctx context.Context) (*gonnx.Model, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	proto, err := parse(p.file)
	if err == nil {
		var inst *gonnx.Model
		if inst, err = instantiate(proto); err == nil {
			return inst, nil
		}
	}
	<-p.slots
	return nil, err
}

// put returns an instance after a clean run.
func (p *instancePool) put(inst *gonnx.Model) {
	p.idle <- inst
	<-p.slots
}

// discard gives up the slot of an instance that is dropped; a new one is made
// when next needed.
func (p *instancePool) discard() {
	<-p.slots
}
