// Package prediction validates prediction requests and runs them on a model
// from the catalog. It knows nothing of gRPC or of what runs the model.
package prediction

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
)

// DefaultMaxBatch is the largest batch accepted unless configured otherwise.
const DefaultMaxBatch = 1024

// Catalog finds models by name.
type Catalog interface {
	Get(name string) (model.Model, error)
	List() []model.Info
}

// ValidationError names the request field that broke a rule.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// ErrBatchTooLarge: more instances than the server runs in one request.
var ErrBatchTooLarge = errors.New("batch too large")

// ErrScopeMissing: the model asks for a scope the caller's token lacks.
var ErrScopeMissing = errors.New("access token lacks the model's scope")

// Scopes are what the caller's token grants.
type Scopes []string

func (s Scopes) allow(info model.Info) error {
	if info.RequiredScope == "" || slices.Contains(s, info.RequiredScope) {
		return nil
	}
	return fmt.Errorf("%w: model %s needs %s", ErrScopeMissing, info.Name, info.RequiredScope)
}

// Prediction is the answer for one instance.
type Prediction struct {
	Label         string
	Probabilities []float32 // in the order of the model's labels
}

// Result is the answer for a batch.
type Result struct {
	Model       model.Info
	Predictions []Prediction
}

// Service runs predictions.
type Service struct {
	catalog  Catalog
	maxBatch int
}

// NewService returns a service that accepts batches of up to maxBatch.
func NewService(catalog Catalog, maxBatch int) (*Service, error) {
	if maxBatch < 1 {
		return nil, fmt.Errorf("max batch must be at least 1, got %d", maxBatch)
	}
	return &Service{catalog: catalog, maxBatch: maxBatch}, nil
}

// Predict checks the batch against the model's contract, then runs it.
func (s *Service) Predict(ctx context.Context, caller Scopes, modelName string, batch [][]float32) (Result, error) {
	if err := checkModelName("model", modelName); err != nil {
		return Result{}, err
	}
	m, err := s.catalog.Get(modelName)
	if err != nil {
		return Result{}, err
	}
	info := m.Info()
	if err := caller.allow(info); err != nil {
		return Result{}, err
	}
	if err := s.validate(info, batch); err != nil {
		return Result{}, err
	}
	// The model run cannot be interrupted; don't start one nobody waits for.
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	probs, err := m.Predict(ctx, batch)
	if err != nil {
		return Result{}, err
	}
	if len(probs) != len(batch) {
		return Result{}, fmt.Errorf("model %s returned %d rows for %d instances", info.Name, len(probs), len(batch))
	}
	out := Result{Model: info, Predictions: make([]Prediction, len(probs))}
	for i, row := range probs {
		if len(row) != len(info.Labels) {
			return Result{}, fmt.Errorf("model %s returned %d probabilities, has %d labels", info.Name, len(row), len(info.Labels))
		}
		out.Predictions[i] = Prediction{Label: info.Labels[argmax(row)], Probabilities: row}
	}
	return out, nil
}

func (s *Service) validate(info model.Info, batch [][]float32) error {
	if len(batch) == 0 {
		return &ValidationError{Field: "instances", Reason: "must hold at least one instance"}
	}
	if len(batch) > s.maxBatch {
		return fmt.Errorf("%w: %d instances, the limit is %d; split the request", ErrBatchTooLarge, len(batch), s.maxBatch)
	}
	want := len(info.FeatureNames)
	for i, features := range batch {
		if len(features) != want {
			return &ValidationError{
				Field:  fmt.Sprintf("instances[%d].features", i),
				Reason: fmt.Sprintf("model %s takes %d features (%s), got %d", info.Name, want, strings.Join(info.FeatureNames, ", "), len(features)),
			}
		}
		for j, v := range features {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return &ValidationError{
					Field:  fmt.Sprintf("instances[%d].features[%d]", i, j),
					Reason: fmt.Sprintf("must be a finite number, got %v", v),
				}
			}
		}
	}
	return nil
}

// Models lists the models the caller may use.
func (s *Service) Models(caller Scopes) []model.Info {
	var out []model.Info
	for _, info := range s.catalog.List() {
		if caller.allow(info) == nil {
			out = append(out, info)
		}
	}
	return out
}

// Model describes one model.
func (s *Service) Model(caller Scopes, name string) (model.Info, error) {
	if err := checkModelName("name", name); err != nil {
		return model.Info{}, err
	}
	m, err := s.catalog.Get(name)
	if err != nil {
		return model.Info{}, err
	}
	info := m.Info()
	if err := caller.allow(info); err != nil {
		return model.Info{}, err
	}
	return info, nil
}

// maxModelName bounds a requested model name, so that a NOT_FOUND message
// and its log line quoting it stay small; no served model has a longer one.
const maxModelName = model.MaxNameBytes

func checkModelName(field, name string) error {
	switch {
	case name == "":
		return &ValidationError{Field: field, Reason: "is required (ListModels names the models)"}
	case len(name) > maxModelName:
		return &ValidationError{Field: field, Reason: fmt.Sprintf("is %d bytes, model names are at most %d", len(name), maxModelName)}
	}
	return nil
}

func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}
