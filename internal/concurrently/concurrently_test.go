package concurrently

import (
	"sync"
	"testing"
)

// Every index runs exactly once, and Run returns only after all have.
func TestRunCallsEveryIndexOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	Run(20, func(i int) {
		mu.Lock()
		seen[i]++
		mu.Unlock()
	})
	if len(seen) != 20 {
		t.Fatalf("%d distinct indexes ran, want 20", len(seen))
	}
	for i, n := range seen {
		if i < 0 || i >= 20 || n != 1 {
			t.Fatalf("index %d ran %d times", i, n)
		}
	}
}
