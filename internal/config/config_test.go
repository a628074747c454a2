package config

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantAddr    string
		wantTimeout time.Duration
		wantErr     string
	}{
		{name: "defaults", wantAddr: "localhost:1", wantTimeout: time.Second},
		{name: "env fills unset flag", env: map[string]string{"SVC_GRPC_ADDR": ":9"}, wantAddr: ":9", wantTimeout: time.Second},
		{name: "flag beats env", args: []string{"--grpc-addr=:7"}, env: map[string]string{"SVC_GRPC_ADDR": ":9"}, wantAddr: ":7", wantTimeout: time.Second},
		{name: "bad env value names the variable", env: map[string]string{"SVC_TIMEOUT": "soon"}, wantErr: "SVC_TIMEOUT"},
		{name: "bad flag says what it wants", args: []string{"--timeout=soon"}, wantErr: `--timeout "soon": want a duration such as 90s`},
		{name: "bad env value says what it wants", env: map[string]string{"SVC_TIMEOUT": "soon"}, wantErr: "want a duration"},
		{name: "bad boolean in the documented spelling", args: []string{"--verbose=maybe"}, wantErr: `--verbose "maybe": want true or false`},
		{name: "huge number", args: []string{"--workers=99999999999999999999"}, wantErr: "--workers \"99999999999999999999\": out of range"},
		{name: "unknown flag in the documented spelling", args: []string{"-nope"}, wantErr: "not defined: --nope (svc --help lists every setting)"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "misspelt variable", env: map[string]string{"SVC_GRPC_ADRR": ":9"}, wantErr: "SVC_GRPC_ADRR matches no setting"},
		{name: "other services' variables are not ours", env: map[string]string{"OTHERSVC_X": "1", "PATH": "/bin"}, wantAddr: "localhost:1", wantTimeout: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("svc", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			addr := fs.String("grpc-addr", "localhost:1", "address")
			timeout := fs.Duration("timeout", time.Second, "timeout")
			fs.Bool("verbose", false, "verbose")
			fs.Int("workers", 1, "workers")
			err := Parse(fs, "svc", tt.args, Environ(tt.env), "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *addr != tt.wantAddr || *timeout != tt.wantTimeout {
				t.Fatalf("got addr %q timeout %s, want %q %s", *addr, *timeout, tt.wantAddr, tt.wantTimeout)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("predictsvc", "jwks-url"); got != "PREDICTSVC_JWKS_URL" {
		t.Fatalf("EnvName = %q", got)
	}
}

func TestCheckListenAddrs(t *testing.T) {
	for _, tc := range []struct {
		grpc, http string
		want       string // "" for no error
	}{
		{"localhost:50051", "localhost:8081", ""},
		{":50051", "0.0.0.0:8081", ""},
		{"127.0.0.1:0", "127.0.0.1:0", ""},
		{"[::1]:50051", "[::1]:8081", ""},
		{"garbage", "localhost:8081", `--grpc-addr "garbage": want host:port`},
		{"localhost:50051", "localhost:99999", `--http-addr "localhost:99999": the port must be a number from 0 to 65535`},
		{"localhost:http", "localhost:8081", "the port must be a number"},
		{"localhost:8081", "localhost:8081", "they need an address each"},
	} {
		err := CheckListenAddrs(tc.grpc, tc.http)
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckListenAddrs(%q, %q) = %v, want nil", tc.grpc, tc.http, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckListenAddrs(%q, %q) = %v, want %q", tc.grpc, tc.http, err, tc.want)
		}
	}
}
