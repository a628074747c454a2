package loadgen

import (
	"testing"
	"time"
)

// A workload that calls twice as often as another shows a ratio near 2; the
// slices alternate so both see the same conditions.
func TestRatioComparesCallCounts(t *testing.T) {
	fixed := func(perSlice int64) Workload {
		return func(time.Duration) int64 { return perSlice }
	}
	if got := Ratio(fixed(200), fixed(100), time.Millisecond, 4); got != 2 {
		t.Fatalf("Ratio = %v, want 2", got)
	}
	if got := Ratio(fixed(1), fixed(0), time.Millisecond, 2); got != 0 {
		t.Fatalf("Ratio with an idle second workload = %v, want 0", got)
	}
}

func TestCountCountsSuccessesOnly(t *testing.T) {
	var calls int64
	fail := false
	n := Count(1, 20*time.Millisecond, func() error {
		calls++
		fail = !fail
		if fail {
			return errFailed
		}
		return nil
	})
	// Every other call fails, the first included.
	if n == 0 || n != calls/2 {
		t.Fatalf("Count = %d of %d calls, want %d", n, calls, calls/2)
	}
}

type failed struct{}

func (failed) Error() string { return "failed" }

var errFailed error = failed{}

// Each of the conc workers gets its own function, so its state is its own.
func TestRunGivesEachWorkerItsOwnFunction(t *testing.T) {
	var counts []*int
	Run(3, 50*time.Millisecond, func() func() {
		n := new(int)
		counts = append(counts, n)
		return func() { *n++; time.Sleep(time.Millisecond) } // like a call: it waits
	})
	if len(counts) != 3 {
		t.Fatalf("%d workers made, want 3", len(counts))
	}
	for i, n := range counts {
		if *n == 0 {
			t.Errorf("worker %d never ran", i)
		}
	}
}
