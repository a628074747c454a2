// Package tracing sets up OpenTelemetry: W3C trace-context propagation always
// (so a caller's trace passes through), span export over OTLP only when an
// endpoint is configured, and trace ids in log lines.
package tracing

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"
)

// Config says where spans go.
type Config struct {
	Service string
	// Endpoint is an OTLP/gRPC collector (host:port); empty exports nothing.
	Endpoint string
	// Insecure sends to the collector without TLS (a local agent).
	Insecure bool
}

// Tracing holds the provider and makes the gRPC stats handlers that use it.
type Tracing struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// New builds the tracing for a service. Call Shutdown on exit to flush.
func New(ctx context.Context, cfg Config) (*Tracing, error) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	if cfg.Endpoint == "" {
		return &Tracing{provider: noop.NewTracerProvider(), propagator: prop, shutdown: func(context.Context) error { return nil }}, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exporter, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(cfg.Service))),
	)
	return &Tracing{provider: tp, propagator: prop, shutdown: tp.Shutdown}, nil
}

// ServerHandler traces incoming gRPC calls.
func (t *Tracing) ServerHandler() stats.Handler {
	return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(t.provider), otelgrpc.WithPropagators(t.propagator))
}

// ClientHandler traces outgoing gRPC calls and propagates their context.
func (t *Tracing) ClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(t.provider), otelgrpc.WithPropagators(t.propagator))
}

// Tracer is for spans of a service's own (background work).
func (t *Tracing) Tracer(name string) trace.Tracer { return t.provider.Tracer(name) }

// Shutdown flushes spans not yet exported.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// LogHandler adds trace_id and span_id to every record logged with a
// context that carries a recorded span.
func LogHandler(next slog.Handler) slog.Handler { return traceLogHandler{next} }

type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(as)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}
