package token

import (
	"testing"
	"time"
)

func TestVerifiedCache(t *testing.T) {
	now := time.Now()
	c := newVerifiedCache(2)
	live := Principal{Subject: "a", ExpiresAt: now.Add(time.Minute)}
	c.put(cacheKey("t1"), live)
	if p, ok := c.get(cacheKey("t1"), now); !ok || p.Subject != "a" {
		t.Fatal("fresh entry missed")
	}
	if _, ok := c.get(cacheKey("t1"), now.Add(time.Minute)); ok {
		t.Fatal("entry served at its exp")
	}
	if _, ok := c.get(cacheKey("other"), now); ok {
		t.Fatal("unknown token hit")
	}
	c.put(cacheKey("t2"), Principal{Subject: "b", ExpiresAt: now.Add(-time.Second)})
	c.put(cacheKey("t3"), live)
	if n := c.len(); n > 2 {
		t.Fatalf("cache holds %d entries, bound is 2", n)
	}
	c.put(cacheKey("t4"), Principal{Subject: "no exp"})
	if _, ok := c.get(cacheKey("t4"), now); ok {
		t.Fatal("a principal without exp was cached")
	}
}
