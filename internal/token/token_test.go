package token_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/token"
	"github.com/mlgate/mlgate/internal/tokentest"
)

func newVerifier(t *testing.T, iss *tokentest.Issuer) *token.Verifier {
	t.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience, Leeway: 30 * time.Second}, iss, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyValid(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	p, err := newVerifier(t, iss).Verify(context.Background(), iss.Valid(t, "user-42"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "user-42" || p.TokenID != "test-user-42" || time.Until(p.ExpiresAt) < 14*time.Minute {
		t.Fatalf("principal = %+v", p)
	}
}

func TestVerifyRefusesForgeries(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	v := newVerifier(t, iss)
	for _, f := range iss.Forgeries(t) {
		t.Run(f.Name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), f.Token)
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
			if len(f.Token) > 8 && strings.Contains(err.Error(), f.Token) {
				t.Fatalf("error echoes the token: %v", err)
			}
		})
	}
}

// A token expired by less than the leeway is still accepted; the leeway is the
// only slack.
func TestVerifyLeeway(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	v := newVerifier(t, iss)
	c := iss.Claims("user-1")
	c["exp"] = time.Now().Add(-10 * time.Second).Unix()
	if _, err := v.Verify(context.Background(), iss.Sign(t, c)); err != nil {
		t.Fatalf("token 10s past exp with 30s leeway: %v", err)
	}
}

func TestNewVerifierRejectsConfig(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	tests := []struct {
		name string
		cfg  token.VerifierConfig
		keys token.KeyLookup
	}{
		{"no issuer", token.VerifierConfig{Audience: "a"}, iss},
		{"no audience", token.VerifierConfig{Issuer: "i"}, iss},
		{"leeway over 60s", token.VerifierConfig{Issuer: "i", Audience: "a", Leeway: 61 * time.Second}, iss},
		{"negative leeway", token.VerifierConfig{Issuer: "i", Audience: "a", Leeway: -time.Second}, iss},
		{"no keys", token.VerifierConfig{Issuer: "i", Audience: "a"}, nil},
	}
	for _, tt := range tests {
		if _, err := token.NewVerifier(tt.cfg, tt.keys, nil); err == nil {
			t.Errorf("%s: NewVerifier succeeded", tt.name)
		}
	}
}

func FuzzVerify(f *testing.F) {
	iss := tokentest.NewIssuer(f)
	for _, forged := range iss.Forgeries(f) {
		f.Add(forged.Token)
	}
	f.Add(iss.Valid(f, "user-1"))
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience}, iss, nil)
	if err != nil {
		f.Fatal(err)
	}
	valid := iss.Valid(f, "user-1")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Verify(context.Background(), raw)
		if err == nil && raw != valid && p.Subject != "user-1" {
			t.Fatalf("accepted a token for %q that this issuer never signed", p.Subject)
		}
		if err != nil && !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}

type revocations struct {
	ended map[string]bool
	err   error
}

func (r revocations) IsRevoked(_ context.Context, sid string) (bool, error) {
	return r.ended[sid], r.err
}

// Row T13: a valid token of an ended session is refused; when the list cannot
// be consulted, the verifier says so instead of guessing.
func TestVerifyChecksRevocation(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	cfg := token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience}
	ended, err := token.NewVerifier(cfg, iss, revocations{ended: map[string]bool{"session-user-1": true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ended.Verify(context.Background(), iss.Valid(t, "user-1")); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("token of an ended session: %v, want ErrInvalid", err)
	}
	if p, err := ended.Verify(context.Background(), iss.Valid(t, "user-2")); err != nil || p.SessionID != "session-user-2" || !p.HasScope("predict") || !p.HasRole("user") {
		t.Fatalf("token of an active session: %+v, %v", p, err)
	}
	stale, _ := token.NewVerifier(cfg, iss, revocations{err: errors.New("feed stale")})
	if _, err := stale.Verify(context.Background(), iss.Valid(t, "user-2")); !errors.Is(err, token.ErrRevocationUnknown) || errors.Is(err, token.ErrInvalid) {
		t.Fatalf("stale list: %v, want ErrRevocationUnknown", err)
	}
}

func TestOutcome(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	v := newVerifier(t, iss)
	byName := map[string]string{}
	for _, f := range iss.Forgeries(t) {
		_, err := v.Verify(context.Background(), f.Token)
		byName[f.Name] = token.Outcome(err)
	}
	want := map[string]string{
		"T8 expired two minutes ago":     "expired",
		"T10 other key claiming our kid": "bad_signature",
		"unknown kid":                    "unknown_kid",
		"T11 a.b":                        "malformed",
		"T9 wrong iss":                   "wrong_issuer_or_audience",
		"T5 alg none":                    "bad_signature",
	}
	for name, outcome := range want {
		if byName[name] != outcome {
			t.Errorf("%s: outcome %q, want %q", name, byName[name], outcome)
		}
	}
	if _, err := v.Verify(context.Background(), iss.Valid(t, "u")); token.Outcome(err) != "ok" {
		t.Errorf("valid token: %q", token.Outcome(err))
	}
}

type switchable struct{ ended map[string]bool }

func (s *switchable) IsRevoked(_ context.Context, sid string) (bool, error) { return s.ended[sid], nil }

// A token verified (and cached) before its session ended is refused after.
func TestCachedTokenStillChecksRevocation(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	list := &switchable{ended: map[string]bool{}}
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience}, iss, list)
	if err != nil {
		t.Fatal(err)
	}
	tok := iss.Valid(t, "user-1")
	for range 2 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	list.ended["session-user-1"] = true
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("cached token of an ended session: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	iss := tokentest.NewIssuer(b)
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: iss.Name, Audience: iss.Audience}, iss, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("first sight", func(b *testing.B) {
		toks := make([]string, b.N)
		for i := range toks {
			c := iss.Claims("user")
			c["jti"] = fmt.Sprint(i)
			toks[i] = iss.Sign(b, c)
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := v.Verify(context.Background(), toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("repeated", func(b *testing.B) {
		tok := iss.Valid(b, "user")
		for b.Loop() {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A refused token's message says what to do about it, in mlgate's words
// rather than the JWT library's.
func TestRefusalMessages(t *testing.T) {
	iss := tokentest.NewIssuer(t)
	v := newVerifier(t, iss)
	byName := map[string]string{}
	for _, f := range iss.Forgeries(t) {
		_, err := v.Verify(context.Background(), f.Token)
		if !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", f.Name, err)
		}
		byName[f.Name] = err.Error()
	}
	_, err := v.Verify(context.Background(), token.RefreshTokenPrefix+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	byName["refresh token"] = err.Error()
	for name, want := range map[string]string{
		"T8 expired two minutes ago": "expired; get a new one with Refresh or log in again",
		"unknown kid":                "signed with a key this service does not trust (unknown signing key",
		"kid with a colon":           `(unknown signing key "evil: kid")`,
		"T11 a.b":                    "not a well-formed JWT",
		"T7 no exp":                  "a required claim is missing (exp claim is required)",
		"T9 wrong iss":               "wrong issuer (iss)",
		"T9 wrong aud":               "wrong audience (aud)",
		"issued in the future":       "not valid yet",
		"refresh token":              "this is a refresh token; send the access_token",
	} {
		if got := byName[name]; !strings.Contains(got, want) || strings.Contains(got, "keyfunc") {
			t.Errorf("%s: message %q, want it to contain %q", name, got, want)
		}
	}
}
