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
		check   func(t *testing.T, s settings)
	}{
		{name: "defaults are SQLite under data", check: func(t *testing.T, s settings) {
			kind, path, err := s.store()
			if err != nil || kind != sqliteStore || path != "data/authsvc.db" || s.signingKeyFile != "data/signing-key.pem" {
				t.Fatalf("store = %v %q %v, key %q", kind, path, err, s.signingKeyFile)
			}
		}},
		{name: "postgres from env", env: map[string]string{"AUTHSVC_DATABASE_URL": "postgres://u@h/db"}, check: func(t *testing.T, s settings) {
			if kind, _, _ := s.store(); kind != postgresStore || s.db.URL != "postgres://u@h/db" || s.db.MaxConns != 10 {
				t.Fatalf("settings = %+v", s)
			}
		}},
		{name: "unknown scheme hides the rest of the URL", args: []string{"--database-url", "mysql://root:hunter2@h/db"}, wantErr: `got "mysql:…"`},
		{name: "empty sqlite path", args: []string{"--database-url", "sqlite:"}, wantErr: "needs a file path"},
		{name: "ttl too long", args: []string{"--token-ttl", "48h"}, wantErr: "--token-ttl"},
		{name: "ttl longer than the idle timeout", args: []string{"--token-ttl", "2h", "--session-idle-timeout", "1h"}, wantErr: "outlive their sessions"},
		{name: "ttl zero", args: []string{"--token-ttl", "0s"}, wantErr: "--token-ttl"},
		{name: "bcrypt cost too high", args: []string{"--bcrypt-cost", "31"}, wantErr: "--bcrypt-cost"},
		{name: "bcrypt cost too low", args: []string{"--bcrypt-cost", "9"}, wantErr: "--bcrypt-cost"},
		{name: "negative bcrypt workers", args: []string{"--bcrypt-workers", "-1"}, wantErr: "--bcrypt-workers"},
		{name: "zero login failures", args: []string{"--login-max-failures", "0"}, wantErr: "--login-max"},
		{name: "empty issuer", args: []string{"--issuer", ""}, wantErr: "--issuer"},
		{name: "pool size zero", args: []string{"--db-max-conns", "0"}, wantErr: "--db-max-conns"},
		{name: "bad env duration", env: map[string]string{"AUTHSVC_TOKEN_TTL": "soon"}, wantErr: "AUTHSVC_TOKEN_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSettings("serve", tt.args, config.Environ(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error leaks a password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}
