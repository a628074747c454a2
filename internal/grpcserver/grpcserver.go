// Package grpcserver builds the gRPC server both services run: one interceptor
// chain (logging, authentication, recovery), health and reflection.
package grpcserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	grpclogging "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/mlgate/mlgate/internal/logging"
)

// publicServices need no credentials: probes and tooling must work without a
// token. Matched by exact service name, never by prefix.
var publicServices = map[string]bool{
	healthpb.Health_ServiceDesc.ServiceName:                    true,
	reflectionv1.ServerReflection_ServiceDesc.ServiceName:      true,
	reflectionv1alpha.ServerReflection_ServiceDesc.ServiceName: true,
}

// MaxHeaderListBytes bounds a request's metadata.
const MaxHeaderListBytes = 2 << 20

// defaultDeadline gives a call without a client deadline one, so no handler
// runs unbounded.
func defaultDeadline(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	return handler(ctx, req)
}

// callLevel is the level a finished call is logged at: successes are
// debug, a client's mistakes (bad input, a bad token, throttling) info, and
// what the service itself failed at a warning or an error.
func callLevel(code codes.Code) grpclogging.Level {
	switch code {
	case codes.OK:
		return grpclogging.LevelDebug
	case codes.Unknown, codes.Internal, codes.DataLoss:
		return grpclogging.LevelError
	case codes.Unavailable, codes.Unimplemented:
		return grpclogging.LevelWarn
	default:
		return grpclogging.LevelInfo
	}
}

// failedCalls logs a failed unary call when the access log is off (above
// debug), with the access log's message and field names, so a search for a
// failure finds it at any level. The status message goes too: it says what
// was wrong and never holds a secret.
func failedCalls(log *slog.Logger, quiet methodSet) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if log.Enabled(ctx, slog.LevelDebug) {
			return handler(ctx, req)
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		code := status.Code(err)
		level := slog.Level(callLevel(code))
		if !log.Enabled(ctx, level) {
			return resp, err
		}
		service, method, _ := strings.Cut(strings.TrimPrefix(info.FullMethod, "/"), "/")
		if quiet[[2]string{service, method}] {
			return resp, err
		}
		attrs := []slog.Attr{
			slog.String("grpc.service", service), slog.String("grpc.method", method),
			slog.String("grpc.code", code.String()),
			slog.String("grpc.error", status.Convert(err).Message()),
			slog.String("grpc.time_ms", strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 3, 64)),
		}
		if p, ok := peer.FromContext(ctx); ok {
			attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
		}
		log.LogAttrs(ctx, level, "finished call", attrs...)
		return resp, err
	}
}

// methodSet holds full method names split into service and method, so that
// matching a call needs no string built per call (CallMeta.FullMethod
// formats one).
type methodSet map[[2]string]bool

func newMethodSet(fullMethods []string) methodSet {
	set := methodSet{}
	for _, m := range fullMethods {
		service, method, _ := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		set[[2]string{service, method}] = true
	}
	return set
}

func (s methodSet) has(c interceptors.CallMeta) bool { return s[[2]string{c.Service, c.Method}] }

// IsPublic reports whether calls to service skip authentication.
func IsPublic(service string) bool { return publicServices[service] }

// Config describes the server to build.
type Config struct {
	Logger *slog.Logger
	// Authenticate, when set, runs before every handler of every service but
	// health, reflection and PublicMethods. Nil means every method is public.
	Authenticate auth.AuthFunc
	// PublicMethods are full method names ("/pkg.Service/Method") that need
	// no token, matched exactly.
	PublicMethods []string
	// RequiredScopes, when set, maps each protected full method name to the
	// scope its token must carry ("" for none). A protected method missing
	// from the map is refused: new methods are closed until listed.
	RequiredScopes map[string]string
	// TLS, when set, serves gRPC over TLS (and mutual TLS if it verifies
	// client certificates).
	TLS *tls.Config
	// Metrics, when set, counts and times every call (first in the chain).
	Metrics *grpcprom.ServerMetrics
	// Stats, when set, sees every call before the chain (tracing).
	Stats stats.Handler
	// MaxRecvMsgBytes bounds one request message; 0 means
	// DefaultMaxRecvMsgBytes.
	MaxRecvMsgBytes int
	// MaxRequestElements bounds the nested messages and repeated string or
	// bytes entries one request may hold, counted before it is decoded;
	// past it the call gets RESOURCE_EXHAUSTED (after authentication). 0
	// means DefaultMaxRequestElements.
	MaxRequestElements int
	// QuietMethods are full method names polled so often (a revocation feed)
	// that logging each call would drown the rest. Health checks and
	// reflection are always quiet. Their failures still show in metrics.
	QuietMethods []string
}

// Transport limits, set on purpose rather than inherited.
const (
	DefaultMaxRecvMsgBytes = 4 << 20 // a Predict batch of 1024×4 floats is ~20 KiB
	MaxSendMsgBytes        = 16 << 20
	MaxConcurrentStreams   = 256
	// DefaultCallTimeout bounds a call whose client set no deadline.
	DefaultCallTimeout = 30 * time.Second
)

// New returns a server with the chain installed and health (NOT_SERVING until
// the caller says otherwise) and reflection registered.
func New(cfg Config) (*grpc.Server, *health.Server) {
	logOpts := []grpclogging.Option{grpclogging.WithLogOnEvents(grpclogging.FinishCall), grpclogging.WithLevels(callLevel)}
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		cfg.Logger.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if cfg.Metrics != nil {
		unary = append(unary, cfg.Metrics.UnaryServerInterceptor())
		stream = append(stream, cfg.Metrics.StreamServerInterceptor())
	}
	// Probes and tooling (every grpcurl call opens a reflection stream) would
	// double the log without saying anything about the service.
	quiet := newMethodSet(append([]string{
		healthpb.Health_Check_FullMethodName, healthpb.Health_Watch_FullMethodName,
		reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName,
		reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName,
	}, cfg.QuietMethods...))
	// Every call is logged at debug (go-grpc-middleware's access log, at the
	// level callLevel gives its code). At info and above only failures are,
	// by the much cheaper failedCalls: the access log costs about a sixth of
	// a Predict, and successful calls are counted by the metrics anyway.
	accessLogged := selector.MatchFunc(func(ctx context.Context, c interceptors.CallMeta) bool {
		return cfg.Logger.Enabled(ctx, slog.LevelDebug) && !quiet.has(c)
	})
	unary = append(unary, defaultDeadline,
		selector.UnaryServerInterceptor(grpclogging.UnaryServerInterceptor(logging.Interceptor(cfg.Logger), logOpts...), accessLogged),
		failedCalls(cfg.Logger, quiet))
	stream = append(stream,
		selector.StreamServerInterceptor(grpclogging.StreamServerInterceptor(logging.Interceptor(cfg.Logger), logOpts...), accessLogged))
	if cfg.Authenticate != nil {
		public := newMethodSet(cfg.PublicMethods)
		protected := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
			return !IsPublic(c.Service) && !public.has(c)
		})
		authenticate := cfg.Authenticate
		if cfg.RequiredScopes != nil {
			authenticate = withScopes(authenticate, cfg.RequiredScopes)
		}
		unary = append(unary, selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(authenticate), protected))
		stream = append(stream, selector.StreamServerInterceptor(auth.StreamServerInterceptor(authenticate), protected))
	}
	unary = append(unary, rejectUndecodable, recovery.UnaryServerInterceptor(recoverOpt))
	stream = append(stream, recovery.StreamServerInterceptor(recoverOpt))

	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(newLenientCodec(cmp.Or(cfg.MaxRequestElements, DefaultMaxRequestElements))),
		grpc.MaxRecvMsgSize(cmp.Or(cfg.MaxRecvMsgBytes, DefaultMaxRecvMsgBytes)),
		grpc.MaxSendMsgSize(MaxSendMsgBytes),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.ConnectionTimeout(10 * time.Second),
		// Reused handler goroutines keep their grown stacks: a fresh goroutine
		// per call spends ~7% of a Predict copying its stack as the chain
		// deepens.
		grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0))),
		// Clients may ping at most every 10 s; idle connections are closed
		// after 15 minutes and dead ones found within a minute.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
		// Bounds what one request's metadata can make the server buffer.
		// Generous (a token is under 1 KiB) so that an oversized token still
		// gets a clear UNAUTHENTICATED up to this size; past it the transport
		// refuses the headers.
		grpc.MaxHeaderListSize(MaxHeaderListBytes),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	if cfg.Stats != nil {
		opts = append(opts, grpc.StatsHandler(cfg.Stats))
	}
	srv := grpc.NewServer(opts...)
	healthSrv := health.NewServer()
	healthSrv.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, healthSrv)
	reflection.Register(srv)
	return srv, healthSrv
}
