// Package httpapi serves authsvc's HTTP endpoints: the JWK Set that Envoy,
// Istio and any JWT library can verify mlgate tokens with.
package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/mlgate/mlgate/internal/jwk"
)

// JWKSPath is where the key set is served.
const JWKSPath = "/.well-known/jwks.json"

// KeySet publishes the public signing keys.
type KeySet interface {
	PublicKeys() jwk.Set
}

// Register adds the JWKS endpoint to mux.
func Register(mux *http.ServeMux, keys KeySet) {
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.Marshal(keys.PublicKeys())
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		// Well below rotate-key's activation delay (2 minutes by default), so
		// a cache in front cannot hide a key that is about to sign.
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Write(append(body, '\n')) // a terminal prompt starts on its own line
	})
}
