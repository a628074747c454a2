package serve

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/mlgate/mlgate/internal/syncbuf"
)

// Plaintext on loopback is the quiet default; plaintext on every interface
// is allowed but logged.
func TestPlaintextBeyondLoopbackIsLogged(t *testing.T) {
	for _, tc := range []struct {
		host     string
		wantWarn bool
	}{
		{"127.0.0.1", false},
		{"0.0.0.0", true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, Servers{
					Logger: slog.New(slog.NewTextHandler(logs, nil)),
					GRPC:   grpc.NewServer(), GRPCAddr: tc.host + ":0",
					Health: health.NewServer(),
					HTTP:   http.NewServeMux(), HTTPAddr: "127.0.0.1:0",
				})
			}()
			for !strings.Contains(logs.String(), "listening") {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(logs.String(), "serving plaintext beyond loopback"); got != tc.wantWarn {
				t.Errorf("warning logged: %v, want %v\n%s", got, tc.wantWarn, logs)
			}
		})
	}
}

// A taken port is named with the setting that chooses it.
func TestTakenPortNamesTheFlag(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = Run(context.Background(), Servers{
		Logger: slog.New(slog.DiscardHandler), GRPC: grpc.NewServer(), GRPCAddr: taken.Addr().String(),
		Health: health.NewServer(), HTTP: http.NewServeMux(), HTTPAddr: "127.0.0.1:0",
	})
	if err == nil || !strings.Contains(err.Error(), "choose another --grpc-addr") {
		t.Fatalf("Run on a taken port: %v", err)
	}
}
