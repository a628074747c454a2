package main

import (
	"io"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
)

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "defaults"},
		{name: "jwks file replaces the URL", args: []string{"--jwks-file", "/k.json", "--jwks-url", "not a url"}},
		{name: "leeway over 60s", args: []string{"--leeway", "61s"}, wantErr: "--leeway"},
		{name: "negative leeway", args: []string{"--leeway", "-1s"}, wantErr: "--leeway"},
		{name: "jwks url not http", args: []string{"--jwks-url", "ftp://h/jwks.json"}, wantErr: "--jwks-url"},
		{name: "jwks url without host", env: map[string]string{"PREDICTSVC_JWKS_URL": "http:///jwks.json"}, wantErr: "--jwks-url"},
		{name: "max batch zero", args: []string{"--max-batch", "0"}, wantErr: "--max-batch"},
		{name: "refresh too often", args: []string{"--jwks-refresh", "100ms"}, wantErr: "--jwks-refresh"},
		{name: "revocation poll too slow for the 5s promise", args: []string{"--revocation-poll", "10s"}, wantErr: "--revocation-poll"},
		{name: "staleness below two polls", args: []string{"--revocation-max-staleness", "1s"}, wantErr: "--revocation-max-staleness"},
		{name: "revocation off", args: []string{"--auth-addr", "", "--revocation-poll", "1h"}},
		{name: "empty audience", args: []string{"--audience", ""}, wantErr: "--audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSettings("serve", tt.args, config.Environ(tt.env), io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
