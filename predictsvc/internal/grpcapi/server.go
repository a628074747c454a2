// Package grpcapi is predictsvc's gRPC surface: it turns requests into calls on
// the prediction service and errors into status codes (in errors.go only).
package grpcapi

import (
	"context"
	"log/slog"

	predictionv1 "github.com/mlgate/mlgate/gen/go/prediction/v1"
	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/prediction"
)

// Predictor runs and describes models.
type Predictor interface {
	Predict(ctx context.Context, caller prediction.Scopes, modelName string, batch [][]float32) (prediction.Result, error)
	Models(caller prediction.Scopes) []model.Info
	Model(caller prediction.Scopes, name string) (model.Info, error)
}

// RequiredScopes maps each method to the scope its token must carry.
var RequiredScopes = map[string]string{
	predictionv1.PredictionService_Predict_FullMethodName:    "predict",
	predictionv1.PredictionService_ListModels_FullMethodName: "models:read",
	predictionv1.PredictionService_GetModel_FullMethodName:   "models:read",
}

// scopes are the verified caller's.
func scopes(ctx context.Context) prediction.Scopes {
	p, _ := token.FromContext(ctx)
	return p.Scopes
}

// Server implements prediction.v1.PredictionService. The auth interceptor has
// verified the caller's token before any method here runs.
type Server struct {
	predictionv1.UnimplementedPredictionServiceServer
	predictor Predictor
	log       *slog.Logger
}

// NewServer returns the PredictionService implementation.
func NewServer(p Predictor, log *slog.Logger) *Server {
	return &Server{predictor: p, log: log}
}

// Predict runs a model on a batch.
func (s *Server) Predict(ctx context.Context, req *predictionv1.PredictRequest) (*predictionv1.PredictResponse, error) {
	instances := req.GetInstances()
	batch := make([][]float32, len(instances))
	for i, inst := range instances {
		batch[i] = inst.GetFeatures()
	}
	res, err := s.predictor.Predict(ctx, scopes(ctx), req.GetModel(), batch)
	if err != nil {
		return nil, s.toStatus(ctx, "predict", err)
	}
	labels := res.Model.Labels
	resp := &predictionv1.PredictResponse{
		Model:        res.Model.Name,
		ModelVersion: res.Model.Version,
		Predictions:  make([]*predictionv1.Prediction, len(res.Predictions)),
	}
	// Messages allocated in blocks, not one by one: a batch of n costs four
	// allocations instead of n × (labels + 2).
	predictions := make([]predictionv1.Prediction, len(res.Predictions))
	probs := make([]predictionv1.LabelProbability, len(res.Predictions)*len(labels))
	probPtrs := make([]*predictionv1.LabelProbability, len(probs))
	for i, p := range res.Predictions {
		row := probPtrs[i*len(labels) : (i+1)*len(labels) : (i+1)*len(labels)]
		for j, v := range p.Probabilities {
			lp := &probs[i*len(labels)+j]
			lp.Label, lp.Probability = labels[j], v
			row[j] = lp
		}
		pred := &predictions[i]
		pred.Label, pred.Probabilities = p.Label, row
		resp.Predictions[i] = pred
	}
	return resp, nil
}

// ListModels lists the served models.
func (s *Server) ListModels(ctx context.Context, _ *predictionv1.ListModelsRequest) (*predictionv1.ListModelsResponse, error) {
	infos := s.predictor.Models(scopes(ctx))
	resp := &predictionv1.ListModelsResponse{Models: make([]*predictionv1.Model, len(infos))}
	for i, info := range infos {
		resp.Models[i] = toProto(info)
	}
	return resp, nil
}

// GetModel describes one model.
func (s *Server) GetModel(ctx context.Context, req *predictionv1.GetModelRequest) (*predictionv1.GetModelResponse, error) {
	info, err := s.predictor.Model(scopes(ctx), req.GetName())
	if err != nil {
		return nil, s.toStatus(ctx, "get model", err)
	}
	return &predictionv1.GetModelResponse{Model: toProto(info)}, nil
}

func toProto(info model.Info) *predictionv1.Model {
	return &predictionv1.Model{
		Name:         info.Name,
		Version:      info.Version,
		Description:  info.Description,
		FeatureNames: info.FeatureNames,
		Labels:       info.Labels,
	}
}
