package token

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"
)

// verifiedCache remembers tokens whose signature and claims checked out, by
// the SHA-256 of the token (the token itself is not kept), until their exp.
// It is bounded: when full, expired entries go first, then everything.
type verifiedCache struct {
	mu      sync.RWMutex
	max     int
	entries map[[32]byte]Principal
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[32]byte]Principal)}
}

// cacheKey hashes the token's bytes in place: converting a token (hundreds
// of bytes) to a []byte would copy it to the heap on every call.
func cacheKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

func (c *verifiedCache) get(key [32]byte, now time.Time) (Principal, bool) {
	c.mu.RLock()
	p, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !now.Before(p.ExpiresAt) {
		return Principal{}, false
	}
	return p, true
}

func (c *verifiedCache) put(key [32]byte, p Principal) {
	if p.ExpiresAt.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		now := time.Now()
		for k, e := range c.entries {
			if !now.Before(e.ExpiresAt) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[key] = p
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
