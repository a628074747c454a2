// Package modelmetrics reports model runs as Prometheus metrics.
package modelmetrics

import (
	"github.com/mlgate/mlgate/internal/metrics"
	"github.com/mlgate/mlgate/predictsvc/internal/model"
)

// Observer implements model.Observer.
type Observer struct {
	predictions metrics.Counter
	failures    metrics.Counter
	latency     metrics.Histogram
	batchSize   metrics.Histogram
}

// New registers the model metrics.
func New(reg *metrics.Registry) *Observer {
	return &Observer{
		predictions: reg.NewCounter("mlgate_predictions_total", "Instances predicted, by model and version.", "model", "version"),
		failures:    reg.NewCounter("mlgate_inference_errors_total", "Model runs that failed, by model and version.", "model", "version"),
		latency: reg.NewHistogram("mlgate_inference_seconds", "Time of one model run (a whole batch).",
			[]float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}, "model", "version"),
		batchSize: reg.NewHistogram("mlgate_batch_size", "Instances per model run.",
			[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}, "model", "version"),
	}
}

// Preset makes a model's counters report 0 before its first run.
func (o *Observer) Preset(info model.Info) {
	o.predictions.Add(0, info.Name, info.Version)
	o.failures.Add(0, info.Name, info.Version)
}

// ObservePrediction records one run.
func (o *Observer) ObservePrediction(info model.Info, batchSize int, seconds float64, err error) {
	if err != nil {
		o.failures.Inc(info.Name, info.Version)
		return
	}
	o.predictions.Add(float64(batchSize), info.Name, info.Version)
	o.latency.Observe(seconds, info.Name, info.Version)
	o.batchSize.Observe(float64(batchSize), info.Name, info.Version)
}
