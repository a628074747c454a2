// Package loadgen measures how a change of wiring or method changes
// throughput on a shared machine, where a neighbour's load comes and goes
// within seconds: two workloads run in short alternating slices, so that
// drift hits both alike, and their call counts are compared.
package loadgen

import (
	"sync"
	"sync/atomic"
	"time"
)

// Run starts conc workers, each calling its own function from newWorker
// over and over until d has passed, and waits for them. A worker keeps its
// own state (latencies, say) so that the callers share nothing while they
// run; newWorker is called conc times, one after another, before any starts.
func Run(conc int, d time.Duration, newWorker func() func()) {
	var (
		wg       sync.WaitGroup
		deadline time.Time
	)
	// Every worker exists before the clock starts, so none loses its slice
	// to a late start.
	start := make(chan struct{})
	for range conc {
		work := newWorker()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for time.Now().Before(deadline) {
				work()
			}
		}()
	}
	deadline = time.Now().Add(d)
	close(start)
	wg.Wait()
}

// Count runs call from conc goroutines for d and returns how many calls
// succeeded.
func Count(conc int, d time.Duration, call func() error) int64 {
	var n atomic.Int64
	Run(conc, d, func() func() {
		return func() {
			if call() == nil {
				n.Add(1)
			}
		}
	})
	return n.Load()
}

// Workload runs for the given time and returns its count of calls.
type Workload func(d time.Duration) int64

// Ratio runs a and b in pairs of slices, each slice long, b first in every
// other pair so neither always follows the other's load, and returns a's
// total calls over b's.
func Ratio(a, b Workload, slice time.Duration, pairs int) float64 {
	var na, nb int64
	for i := range pairs {
		if i%2 == 0 {
			na += a(slice)
			nb += b(slice)
		} else {
			nb += b(slice)
			na += a(slice)
		}
	}
	if nb == 0 {
		return 0
	}
	return float64(na) / float64(nb)
}
