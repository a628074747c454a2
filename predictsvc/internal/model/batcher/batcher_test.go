package batcher

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
	"github.com/mlgate/mlgate/predictsvc/internal/model/modeltest"
)

// gated is the real model with a gate on its first run, so a test can fill
// the queue while that run is under way, and a record of every run's size.
type gated struct {
	model.Model
	release chan struct{}
	once    sync.Once
	entered chan struct{}
	mu      sync.Mutex
	runs    []int
}

func newGated(m model.Model) *gated {
	return &gated{Model: m, release: make(chan struct{}), entered: make(chan struct{})}
}

func (g *gated) Predict(ctx context.Context, batch [][]float32) ([][]float32, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	g.mu.Lock()
	g.runs = append(g.runs, len(batch))
	g.mu.Unlock()
	return g.Model.Predict(ctx, batch)
}

func (g *gated) runSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.runs)
}

func (b *Model) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

var (
	setosa     = []float32{5.1, 3.5, 1.4, 0.2}
	virginica  = []float32{6.9, 3.1, 5.4, 2.1}
	versicolor = []float32{6.0, 2.9, 4.5, 1.5}
	overflow   = []float32{3e38, 3e38, 3e38, 3e38}
)

// approxEqual reports whether two runs' probabilities agree. A merged run may
// differ from a run alone in the last bits of a float32: the matrix product
// sums in another order for another row count.
func approxEqual(got, want [][]float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return false
		}
		for j := range got[i] {
			if math.Abs(float64(got[i][j]-want[i][j])) > 1e-6 {
				return false
			}
		}
	}
	return true
}

type queuedCall struct {
	batch  [][]float32
	cancel bool
}

type outcome struct {
	out [][]float32
	err error
}

// queueBehindFirst starts a one-row call that holds the only runner, queues
// the given calls behind it, then lets the first run go, and returns each
// queued call's outcome (in order) and the sizes of the runs made.
// A call marked cancel has its context cancelled while it waits.
func queueBehindFirst(t *testing.T, maxRows int, calls []queuedCall) ([]outcome, []int) {
	t.Helper()
	g := newGated(modeltest.Iris(t))
	b := New(g, 1, maxRows)
	firstDone := make(chan error, 1)
	go func() {
		_, err := b.Predict(context.Background(), [][]float32{setosa})
		firstDone <- err
	}()
	<-g.entered
	results := make([]outcome, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := b.Predict(ctx, c.batch)
			results[i] = outcome{out, err}
		}()
		// Queued one at a time, so the queue order is the slice order.
		for b.queued() != i+1 {
			time.Sleep(time.Millisecond)
		}
		if c.cancel {
			cancel()
		}
	}
	close(g.release)
	if err := <-firstDone; err != nil {
		t.Fatalf("first call: %v", err)
	}
	wg.Wait()
	if b.queued() != 0 || b.running != 0 {
		t.Fatalf("after all calls: %d queued, %d running; want none", b.queued(), b.running)
	}
	return results, g.runSizes()
}

func TestMergesQueuedCalls(t *testing.T) {
	direct := modeltest.Iris(t)
	ctx := context.Background()
	type call = queuedCall
	tests := []struct {
		name     string
		maxRows  int
		calls    []call
		wantErrs []error // per call; nil means it must match a direct run
		wantRuns []int
	}{
		{
			name:     "queued calls run as one",
			maxRows:  64,
			calls:    []call{{batch: [][]float32{virginica}}, {batch: [][]float32{versicolor, setosa}}, {batch: [][]float32{setosa}}},
			wantErrs: []error{nil, nil, nil},
			wantRuns: []int{1, 4},
		},
		{
			name:     "a run holds at most maxRows",
			maxRows:  3,
			calls:    []call{{batch: [][]float32{virginica, setosa}}, {batch: [][]float32{versicolor}}, {batch: [][]float32{setosa, setosa}}},
			wantErrs: []error{nil, nil, nil},
			wantRuns: []int{1, 3, 2},
		},
		{
			name:     "a call larger than maxRows runs alone",
			maxRows:  2,
			calls:    []call{{batch: [][]float32{virginica, setosa, versicolor}}, {batch: [][]float32{setosa}}},
			wantErrs: []error{nil, nil},
			wantRuns: []int{1, 3, 1},
		},
		{
			name:     "out-of-range rows fail only their own call",
			maxRows:  64,
			calls:    []call{{batch: [][]float32{virginica}}, {batch: [][]float32{setosa, overflow}}, {batch: [][]float32{versicolor}}},
			wantErrs: []error{nil, model.ErrOutOfRange, nil},
			// The merged run fails, then each call runs alone.
			wantRuns: []int{1, 4, 1, 2, 1},
		},
		{
			name:     "a call whose context ended is left out",
			maxRows:  64,
			calls:    []call{{batch: [][]float32{virginica}}, {batch: [][]float32{setosa}, cancel: true}, {batch: [][]float32{versicolor}}},
			wantErrs: []error{nil, context.Canceled, nil},
			wantRuns: []int{1, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, runs := queueBehindFirst(t, tt.maxRows, tt.calls)
			for i, r := range results {
				if tt.wantErrs[i] != nil {
					if !errors.Is(r.err, tt.wantErrs[i]) {
						t.Errorf("call %d: error %v, want %v", i, r.err, tt.wantErrs[i])
					}
					continue
				}
				if r.err != nil {
					t.Fatalf("call %d: %v", i, r.err)
				}
				want, err := direct.Predict(ctx, tt.calls[i].batch)
				if err != nil {
					t.Fatal(err)
				}
				if !approxEqual(r.out, want) {
					t.Errorf("call %d: merged run gave %v, a run alone %v", i, r.out, want)
				}
			}
			if !slices.Equal(runs, tt.wantRuns) {
				t.Errorf("run sizes %v, want %v", runs, tt.wantRuns)
			}
		})
	}
}

// A lone caller runs at once: the batcher adds no wait.
func TestLoneCallRunsAtOnce(t *testing.T) {
	g := newGated(modeltest.Iris(t))
	close(g.release)
	b := New(g, 2, 64)
	for range 3 {
		if _, err := b.Predict(context.Background(), [][]float32{setosa}); err != nil {
			t.Fatal(err)
		}
	}
	if runs := g.runSizes(); !slices.Equal(runs, []int{1, 1, 1}) {
		t.Errorf("run sizes %v, want three runs of one", runs)
	}
}

// Many callers at once each get their own rows' answers.
func TestConcurrentCallersGetTheirOwnAnswers(t *testing.T) {
	iris := modeltest.Iris(t)
	b := New(iris, 2, 16)
	rows := [][]float32{setosa, virginica, versicolor}
	want := make([][]float32, len(rows))
	for i, r := range rows {
		out, err := iris.Predict(context.Background(), [][]float32{r})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out[0]
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 40 {
				i := (g + n) % len(rows)
				out, err := b.Predict(context.Background(), [][]float32{rows[i], rows[(i+1)%len(rows)]})
				if err != nil {
					errs <- err
					return
				}
				if !approxEqual(out, [][]float32{want[i], want[(i+1)%len(rows)]}) {
					errs <- fmt.Errorf("caller %d got %v for rows %d and %d", g, out, i, (i+1)%len(rows))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// panicking stands for a model runtime fault that escapes as a panic.
type panicking struct{ model.Model }

func (panicking) Predict(context.Context, [][]float32) ([][]float32, error) { panic("runtime fault") }

func TestPanicBecomesEachCallsError(t *testing.T) {
	b := New(panicking{modeltest.Iris(t)}, 1, 64)
	for range 2 { // the runner is handed back: a second call does not hang
		if _, err := b.Predict(context.Background(), [][]float32{setosa}); err == nil {
			t.Fatal("want an error from a panicking run")
		}
	}
}
