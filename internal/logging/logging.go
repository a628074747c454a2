// Package logging builds the services' structured logger and adapts it to
// go-grpc-middleware's logging interceptor.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	grpclogging "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"

	"github.com/mlgate/mlgate/internal/tracing"
)

// New returns a JSON logger at level ("debug", "info", "warn" or "error")
// whose every line names the service, so two services sharing a terminal
// can be told apart, and carries the trace id of a traced call.
func New(w io.Writer, service, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	h := tracing.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
	return slog.New(h).With("service", service), nil
}

// Interceptor adapts l to the interceptor's Logger. The interceptor logs only
// the call's method, code and duration: no payloads and no metadata, so no
// password or token can reach a log line through it.
func Interceptor(l *slog.Logger) grpclogging.Logger {
	return grpclogging.LoggerFunc(func(ctx context.Context, lvl grpclogging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}
