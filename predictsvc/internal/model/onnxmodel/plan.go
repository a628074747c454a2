package onnxmodel

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"gorgonia.org/tensor"
)

// A plan runs a graph of small dense float32 operations directly, row by row,
// without gonnx. gonnx builds its operators and allocates a tensor (and often
// a broadcast copy) per node on every run: for the Iris graph that is 129
// allocations and about 12 µs for one row, most of a Predict's cost, where
// the arithmetic itself takes well under a microsecond.
//
// compilePlan accepts only graphs in which every node that the output depends
// on is one it knows, with its constant operands in shapes it knows; anything
// else runs on gonnx. Every value is either a constant (an initializer) or a
// row-wise activation of shape [batch, width], and every supported operator
// works on each row alone, so a plan serves any batch size.
type plan struct {
	widths []int // width of each activation slot; slot 0 is the graph input
	steps  []step
	output int // the slot holding the output probabilities
}

type opKind int

const (
	opAdd opKind = iota
	opSub
	opMul
	opDiv
	opGemm // out = x·Wᵀ + bias, W stored one output row after another
	opRelu
	opSigmoid
	opSoftmax
)

var elementwise = map[string]opKind{"Add": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv}
var unary = map[string]opKind{"Relu": opRelu, "Sigmoid": opSigmoid, "Softmax": opSoftmax}

type step struct {
	op       opKind
	in, in2  int // slots; in2 is -1 when the second operand is the constant
	out      int
	constant []float32 // elementwise: 1 value or one per column; Gemm: the bias, one per output
	left     bool      // elementwise: the constant is the left operand (c - x, c / x)
	weights  []float32 // Gemm: [outputs][inputs], alpha folded in
	inputs   int       // Gemm: width of the input row
}

// errNoPlan says why a graph runs on gonnx rather than on a plan.
var errNoPlan = errors.New("no plan")

// compilePlan builds a plan computing output from input, or says why it
// cannot.
func compilePlan(graph *onnx.GraphProto, input string, nFeatures int, output string, nLabels int) (*plan, error) {
	params, err := graph.Params()
	if err != nil {
		return nil, fmt.Errorf("%w: initializers: %v", errNoPlan, err)
	}
	needed := neededNodes(graph.GetNode(), output)
	p := &plan{widths: []int{nFeatures}}
	slots := map[string]int{input: 0}
	for _, n := range graph.GetNode() {
		if !needed[n] {
			continue
		}
		if len(n.GetOutput()) != 1 {
			return nil, fmt.Errorf("%w: node %q has %d outputs", errNoPlan, n.GetName(), len(n.GetOutput()))
		}
		s, width, err := compileStep(n, slots, p.widths, params)
		if err != nil {
			return nil, fmt.Errorf("%w: node %q (%s): %v", errNoPlan, n.GetName(), n.GetOpType(), err)
		}
		s.out = len(p.widths)
		slots[n.GetOutput()[0]] = s.out
		p.widths = append(p.widths, width)
		p.steps = append(p.steps, s)
	}
	out, ok := slots[output]
	if !ok {
		return nil, fmt.Errorf("%w: output %q is not computed from the input", errNoPlan, output)
	}
	if p.widths[out] != nLabels {
		return nil, fmt.Errorf("%w: output %q has width %d, want %d", errNoPlan, output, p.widths[out], nLabels)
	}
	p.output = out
	return p, nil
}

// neededNodes returns the nodes the output depends on: sklearn-onnx graphs
// also compute a label and other outputs that Predict never reads.
func neededNodes(nodes []*onnx.NodeProto, output string) map[*onnx.NodeProto]bool {
	producer := map[string]*onnx.NodeProto{}
	for _, n := range nodes {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	needed := map[*onnx.NodeProto]bool{}
	pending := []string{output}
	for len(pending) > 0 {
		name := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		if n, ok := producer[name]; ok && !needed[n] {
			needed[n] = true
			pending = append(pending, n.GetInput()...)
		}
	}
	return needed
}

func compileStep(n *onnx.NodeProto, slots map[string]int, widths []int, params map[string]tensor.Tensor) (step, int, error) {
	ins := n.GetInput()
	attrs := map[string]*onnx.AttributeProto{}
	for _, a := range n.GetAttribute() {
		attrs[a.GetName()] = a
	}
	if op, ok := unary[n.GetOpType()]; ok {
		if len(ins) != 1 {
			return step{}, 0, fmt.Errorf("%d inputs, want 1", len(ins))
		}
		in, ok := slots[ins[0]]
		if !ok {
			return step{}, 0, fmt.Errorf("input %q is not an activation", ins[0])
		}
		for name, a := range attrs {
			// Softmax over the rows' one axis: -1 (the opset 13 default) or 1.
			if op != opSoftmax || name != "axis" || (a.GetI() != -1 && a.GetI() != 1) {
				return step{}, 0, fmt.Errorf("attribute %q not supported", name)
			}
		}
		return step{op: op, in: in, in2: -1}, widths[in], nil
	}
	if op, ok := elementwise[n.GetOpType()]; ok {
		if len(ins) != 2 || len(attrs) != 0 {
			return step{}, 0, fmt.Errorf("want 2 inputs and no attributes")
		}
		a, aIsSlot := slots[ins[0]]
		b, bIsSlot := slots[ins[1]]
		switch {
		case aIsSlot && bIsSlot:
			if widths[a] != widths[b] {
				return step{}, 0, fmt.Errorf("widths %d and %d differ", widths[a], widths[b])
			}
			return step{op: op, in: a, in2: b}, widths[a], nil
		case aIsSlot || bIsSlot:
			in, name, left := a, ins[1], false
			if bIsSlot {
				in, name, left = b, ins[0], true
			}
			c, err := rowConstant(params, name, widths[in])
			if err != nil {
				return step{}, 0, err
			}
			return step{op: op, in: in, in2: -1, constant: c, left: left}, widths[in], nil
		default:
			return step{}, 0, errors.New("no operand is an activation")
		}
	}
	switch n.GetOpType() {
	case "Gemm":
		return compileGemm(ins, attrs, slots, widths, params)
	case "MatMul":
		if len(ins) != 2 || len(attrs) != 0 {
			return step{}, 0, fmt.Errorf("want 2 inputs and no attributes")
		}
		return compileMatrix(ins[0], ins[1], "", false, 1, 1, slots, widths, params)
	}
	return step{}, 0, fmt.Errorf("operator not supported")
}

func compileGemm(ins []string, attrs map[string]*onnx.AttributeProto, slots map[string]int, widths []int, params map[string]tensor.Tensor) (step, int, error) {
	if len(ins) < 2 || len(ins) > 3 {
		return step{}, 0, fmt.Errorf("%d inputs, want 2 or 3", len(ins))
	}
	alpha, beta, transB := float32(1), float32(1), false
	for name, a := range attrs {
		switch name {
		case "alpha":
			alpha = a.GetF()
		case "beta":
			beta = a.GetF()
		case "transB":
			transB = a.GetI() != 0
		case "transA":
			if a.GetI() != 0 {
				return step{}, 0, errors.New("transA not supported")
			}
		default:
			return step{}, 0, fmt.Errorf("attribute %q not supported", name)
		}
	}
	bias := ""
	if len(ins) == 3 {
		bias = ins[2]
	}
	return compileMatrix(ins[0], ins[1], bias, transB, alpha, beta, slots, widths, params)
}

// compileMatrix builds out = alpha·(x·B) + beta·bias, with B transposed first
// when transB is set.
func compileMatrix(x, b, bias string, transB bool, alpha, beta float32, slots map[string]int, widths []int, params map[string]tensor.Tensor) (step, int, error) {
	in, ok := slots[x]
	if !ok {
		return step{}, 0, fmt.Errorf("input %q is not an activation", x)
	}
	shape, data, err := floatConstant(params, b)
	if err != nil {
		return step{}, 0, err
	}
	if len(shape) != 2 {
		return step{}, 0, fmt.Errorf("weights %q have shape %v, want rank 2", b, shape)
	}
	k, m := shape[0], shape[1]
	if transB {
		k, m = m, k
	}
	if k != widths[in] {
		return step{}, 0, fmt.Errorf("weights %q take %d inputs, the activation has %d", b, k, widths[in])
	}
	weights := make([]float32, m*k)
	for j := range m {
		for i := range k {
			v := data[i*m+j] // B[i][j]
			if transB {
				v = data[j*k+i] // B is stored [m][k]
			}
			weights[j*k+i] = alpha * v
		}
	}
	s := step{op: opGemm, in: in, in2: -1, weights: weights, inputs: k, constant: make([]float32, m)}
	if bias != "" {
		c, err := rowConstant(params, bias, m)
		if err != nil {
			return step{}, 0, err
		}
		for j := range s.constant {
			s.constant[j] = beta * c[min(j, len(c)-1)]
		}
	}
	return s, m, nil
}

// rowConstant returns an initializer that broadcasts over rows of width
// values: one value (shape [], [1] or [1,1]) or one per column ([width] or
// [1,width]).
func rowConstant(params map[string]tensor.Tensor, name string, width int) ([]float32, error) {
	shape, data, err := floatConstant(params, name)
	if err != nil {
		return nil, err
	}
	if len(shape) > 2 || (len(shape) == 2 && shape[0] != 1) || (len(data) != 1 && len(data) != width) {
		return nil, fmt.Errorf("constant %q of shape %v does not broadcast over rows of %d", name, shape, width)
	}
	return data, nil
}

func floatConstant(params map[string]tensor.Tensor, name string) ([]int, []float32, error) {
	t, ok := params[name]
	if !ok {
		return nil, nil, fmt.Errorf("operand %q is neither an activation nor an initializer", name)
	}
	data, ok := t.Data().([]float32)
	if !ok {
		// A scalar tensor's Data is the bare value.
		v, isScalar := t.Data().(float32)
		if !isScalar {
			return nil, nil, fmt.Errorf("initializer %q holds %T, want float32", name, t.Data())
		}
		data = []float32{v}
	}
	return slices.Clone([]int(t.Shape())), slices.Clone(data), nil
}

// run computes the rows in features (n rows of the input width) and writes
// the output rows into probs.
func (p *plan) run(features []float32, n int, probs []float32) {
	total := 0
	for _, w := range p.widths[1:] {
		total += n * w
	}
	scratch := make([]float32, total) // every intermediate value in one block
	values := make([][]float32, len(p.widths))
	values[0] = features
	for slot, w := range p.widths[1:] {
		values[slot+1], scratch = scratch[:n*w:n*w], scratch[n*w:]
	}
	for _, s := range p.steps {
		s.apply(values, p.widths, n)
	}
	copy(probs, values[p.output])
}

func (s *step) apply(values [][]float32, widths []int, n int) {
	x, out := values[s.in], values[s.out]
	width := widths[s.out]
	switch s.op {
	case opGemm:
		for r := range n {
			row := x[r*s.inputs : (r+1)*s.inputs]
			for j := range width {
				w := s.weights[j*s.inputs : (j+1)*s.inputs]
				sum := s.constant[j]
				for i, v := range row {
					sum += v * w[i]
				}
				out[r*width+j] = sum
			}
		}
	case opAdd, opSub, opMul, opDiv:
		for i, a := range x {
			var b float32
			switch {
			case s.in2 >= 0:
				b = values[s.in2][i]
			case len(s.constant) == 1:
				b = s.constant[0]
			default:
				b = s.constant[i%width]
			}
			if s.left {
				a, b = b, a
			}
			out[i] = arith(s.op, a, b)
		}
	case opRelu:
		for i, v := range x {
			out[i] = max(v, 0)
		}
	case opSigmoid:
		for i, v := range x {
			out[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case opSoftmax:
		for r := range n {
			softmax(x[r*width:(r+1)*width], out[r*width:(r+1)*width])
		}
	}
}

func arith(op opKind, a, b float32) float32 {
	switch op {
	case opAdd:
		return a + b
	case opSub:
		return a - b
	case opMul:
		return a * b
	default:
		return a / b
	}
}

// softmax of one row, shifted by the row's own maximum so that no exp
// overflows.
func softmax(in, out []float32) {
	top := float32(math.Inf(-1))
	for _, v := range in {
		top = max(top, v)
	}
	var sum float64
	for i, v := range in {
		e := math.Exp(float64(v - top))
		out[i] = float32(e)
		sum += e
	}
	for i := range out {
		out[i] = float32(float64(out[i]) / sum)
	}
}
