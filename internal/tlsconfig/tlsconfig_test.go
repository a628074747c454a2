package tlsconfig

import (
	"os"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/certtest"
)

func TestServerConfig(t *testing.T) {
	ca := certtest.NewCA(t)
	cert, key := ca.Issue(t, "server")
	if cfg, err := (Server{}).Config(); cfg != nil || err != nil {
		t.Fatalf("TLS off: %v, %v", cfg, err)
	}
	cfg, err := Server{Cert: cert, Key: key, ClientCA: ca.CAFile}.Config()
	if err != nil || len(cfg.Certificates) != 1 || cfg.ClientCAs == nil {
		t.Fatalf("mTLS config = %+v, %v", cfg, err)
	}
	readable := strings.TrimSuffix(key, ".pem") + "-readable.pem"
	data, _ := os.ReadFile(key)
	os.WriteFile(readable, data, 0o644)
	os.Chmod(readable, 0o644)
	tests := []struct {
		name    string
		cfg     Server
		wantErr string
	}{
		{"cert without key", Server{Cert: cert}, "half configured"},
		{"key without cert", Server{Key: key}, "half configured"},
		{"client CA alone", Server{ClientCA: ca.CAFile}, "half configured"},
		{"readable key", Server{Cert: cert, Key: readable}, "chmod 600"},
		{"missing key", Server{Cert: cert, Key: key + ".missing"}, "no such file"},
		{"CA that is not PEM", Server{Cert: cert, Key: key, ClientCA: key}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg.Config(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestClientConfig(t *testing.T) {
	ca := certtest.NewCA(t)
	cert, key := ca.Issue(t, "client")
	cfg, err := Client{CA: ca.CAFile, Cert: cert, Key: key}.Config()
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("client config = %+v, %v", cfg, err)
	}
	if _, err := (Client{Cert: cert}).Config(); err == nil {
		t.Fatal("half-configured client accepted")
	}
}
