package jwk

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
)

// The RFC 8037 appendix A.3 test vector: the thumbprint of its example key.
func TestThumbprintMatchesRFC8037(t *testing.T) {
	k := Key{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", Kid: "x"}
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Thumbprint(pub), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

func TestSetRoundTrip(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(Set{Keys: []Key{FromPublicKey(pub)}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseSet(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys[Thumbprint(pub)]; !got.Equal(pub) {
		t.Fatalf("round trip lost the key: %v", keys)
	}
}

func TestParseSetRejects(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	good := FromPublicKey(pub)
	tests := []struct {
		name, doc, wantErr string
	}{
		{"not json", `{`, "jwk set"},
		{"no keys", `{"keys":[]}`, "no keys"},
		{"rsa key", `{"keys":[{"kty":"RSA","kid":"a","n":"x","e":"AQAB"}]}`, "want kty OKP"},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`, "holds 3 bytes"},
		{"bad base64", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"!!"}]}`, "not base64url"},
		{"wrong alg", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"HS256","x":"` + good.X + `"}]}`, "want alg EdDSA"},
		{"no kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + good.X + `"}]}`, "without kid"},
		{"duplicate kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + good.X + `"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + good.X + `"}]}`, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSet([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseSet error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
