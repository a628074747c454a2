package signing

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mlgate/mlgate/internal/jwk"
)

func TestLoadOrCreateKeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "signing-key.pem")
	first, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	again, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(again) {
		t.Fatal("second start produced a different key: a restart would log everyone out")
	}
}

func TestLoadKeyRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pem")
	if _, err := LoadOrCreateKey(good); err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := os.ReadFile(good)
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		wantErr string
	}{
		{"readable by others", pemBytes, 0o644, "chmod 600"},
		{"group readable", pemBytes, 0o640, "chmod 600"},
		{"not PEM", []byte("hello"), 0o600, "PEM"},
		{"wrong block", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600, "PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".pem")
			if err := os.WriteFile(path, tt.content, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadOrCreateKey error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSignClaims(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 12, 3, 10, 0, 0, 500, time.UTC)
	s, err := NewSigner(key, Config{Issuer: "iss", Audience: "aud", TTL: 15 * time.Minute}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	raw, exp, err := s.Sign("user-1")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Truncate(time.Second).Add(15 * time.Minute)) {
		t.Errorf("expiry = %s", exp)
	}
	var c jwt.RegisteredClaims
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithoutClaimsValidation()).ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) {
		return key.Public(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != jwk.Thumbprint(key.Public().(ed25519.PublicKey)) || tok.Header["kid"] != s.KeyID() {
		t.Errorf("kid = %v", tok.Header["kid"])
	}
	if c.Issuer != "iss" || c.Subject != "user-1" || len(c.Audience) != 1 || c.Audience[0] != "aud" ||
		!c.IssuedAt.Time.Equal(now.Truncate(time.Second)) || !c.ExpiresAt.Time.Equal(exp) || len(c.ID) < 16 {
		t.Errorf("claims = %+v", c)
	}
	raw2, _, _ := s.Sign("user-1")
	var c2 jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw2, &c2); err != nil || c2.ID == c.ID {
		t.Errorf("two tokens share jti %q", c.ID)
	}
	if set := s.PublicKeys(); len(set.Keys) != 1 || set.Keys[0].Kid != s.KeyID() {
		t.Errorf("PublicKeys = %+v", set)
	}
}

func TestNewSignerRejects(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	for name, cfg := range map[string]Config{
		"no issuer":    {Audience: "a", TTL: time.Minute},
		"no audience":  {Issuer: "i", TTL: time.Minute},
		"zero ttl":     {Issuer: "i", Audience: "a"},
		"negative ttl": {Issuer: "i", Audience: "a", TTL: -time.Minute},
	} {
		if _, err := NewSigner(key, cfg, time.Now); err == nil {
			t.Errorf("%s: NewSigner succeeded", name)
		}
	}
	if _, err := NewSigner(key[:10], Config{Issuer: "i", Audience: "a", TTL: time.Minute}, time.Now); err == nil {
		t.Error("NewSigner accepted a truncated key")
	}
}
