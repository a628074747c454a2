// Package concurrently runs a function from many goroutines released at the
// same moment, for tests that race operations against each other (one email
// registered fifty times at once, one refresh token exchanged ten times).
package concurrently

import "sync"

// Run calls f(0) … f(n-1), each on its own goroutine, all released together
// once every goroutine exists, and returns when all have returned.
func Run(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}
