// Package metrics gives each service a private Prometheus registry: gRPC
// server metrics, Go and process metrics, build info, and the service's own
// counters, served at /metrics.
package metrics

import (
	"net/http"
	"runtime/debug"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is one service's metrics.
type Registry struct {
	reg  *prometheus.Registry
	GRPC *grpcprom.ServerMetrics
}

// New registers the standard collectors and build info for service.
func New(service string) *Registry {
	reg := prometheus.NewRegistry()
	grpcMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}),
	))
	version, goVersion := "devel", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
		if info.Main.Version != "" && info.Main.Version != "(devel)" {
			version = info.Main.Version
		}
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mlgate_build_info", Help: "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"service": service, "version": version, "goversion": goVersion},
	})
	buildInfo.Set(1)
	reg.MustRegister(grpcMetrics, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg, GRPC: grpcMetrics}
}

// MustRegister adds a service's own collectors.
func (r *Registry) MustRegister(cs ...prometheus.Collector) { r.reg.MustRegister(cs...) }

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// Counter is a labelled counter.
type Counter struct{ vec *prometheus.CounterVec }

// NewCounter registers a counter with labels.
func (r *Registry) NewCounter(name, help string, labels ...string) Counter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.reg.MustRegister(vec)
	return Counter{vec}
}

// Inc adds one for the label values.
func (c Counter) Inc(values ...string) { c.vec.WithLabelValues(values...).Inc() }

// Add adds n for the label values.
func (c Counter) Add(n float64, values ...string) { c.vec.WithLabelValues(values...).Add(n) }

// Histogram is a labelled histogram.
type Histogram struct{ vec *prometheus.HistogramVec }

// NewHistogram registers a histogram with labels and buckets.
func (r *Registry) NewHistogram(name, help string, buckets []float64, labels ...string) Histogram {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	r.reg.MustRegister(vec)
	return Histogram{vec}
}

// Observe records v for the label values.
func (h Histogram) Observe(v float64, values ...string) { h.vec.WithLabelValues(values...).Observe(v) }
