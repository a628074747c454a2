package onnxmodel

import "github.com/mlgate/mlgate/predictsvc/internal/model"

// OpenOnGonnx opens a model that never runs on a plan, to compare with.
func OpenOnGonnx(meta model.Metadata, file []byte) (model.Model, error) {
	return open(meta, file, false)
}

// RunsOnPlan reports whether m, opened by Open, runs on a plan.
func RunsOnPlan(m model.Model) bool { return m.(*onnxModel).plan != nil }

// PlanAgreement reports whether m's plan agrees with gonnx, and whether it
// still does once one of its weights is changed.
func PlanAgreement(m model.Model) (asCompiled, altered bool) {
	om := m.(*onnxModel)
	asCompiled = om.agrees(om.plan)
	for _, s := range om.plan.steps {
		if s.op == opGemm {
			s.weights[0] += 0.01
		}
	}
	return asCompiled, om.agrees(om.plan)
}
