// Package tlsconfig turns certificate flags into TLS configurations, and
// refuses configurations that are half done or unsafe.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// Server is a server's certificate files.
type Server struct {
	Cert, Key string
	// ClientCA, when set, requires clients to present a certificate it signed
	// (mutual TLS).
	ClientCA string
}

// RegisterFlags declares --tls-cert, --tls-key and --tls-client-ca.
func (s *Server) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Cert, "tls-cert", "", "PEM certificate (chain) to serve gRPC and HTTP over TLS")
	fs.StringVar(&s.Key, "tls-key", "", "PEM private key of --tls-cert (mode 0600)")
	fs.StringVar(&s.ClientCA, "tls-client-ca", "", "PEM CA bundle: gRPC clients must present a certificate it signed (mutual TLS)")
}

// Enabled reports whether TLS is asked for at all.
func (s Server) Enabled() bool { return s.Cert != "" || s.Key != "" || s.ClientCA != "" }

// Config returns the server configuration, or nil when TLS is off.
func (s Server) Config() (*tls.Config, error) {
	if !s.Enabled() {
		return nil, nil
	}
	if s.Cert == "" || s.Key == "" {
		return nil, errors.New("TLS is half configured: give both --tls-cert and --tls-key (--tls-client-ca needs them too)")
	}
	pair, err := loadPair(s.Cert, s.Key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if s.ClientCA != "" {
		pool, err := LoadCA(s.ClientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client is what a client needs to reach a TLS server.
type Client struct {
	// CA verifies the server; empty means the system roots.
	CA string
	// Cert and Key, when set, are presented to a server that asks (mutual TLS).
	Cert, Key string
}

// Config returns the client configuration.
func (c Client) Config() (*tls.Config, error) {
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("client TLS is half configured: give both the client certificate and its key")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pool, err := LoadCA(c.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.Cert != "" {
		pair, err := loadPair(c.Cert, c.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// LoadCA reads a PEM bundle of CA certificates.
func LoadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return pool, nil
}

// loadPair reads a certificate and its key, refusing a key file that other
// users can read.
func loadPair(cert, key string) (tls.Certificate, error) {
	info, err := os.Stat(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return tls.Certificate{}, fmt.Errorf("TLS key %s has mode %04o: other users can read it; run chmod 600 %s", key, perm, key)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate and key: %w", err)
	}
	return pair, nil
}
