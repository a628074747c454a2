// Package batcher merges concurrent Predict calls on one model into a single
// model run.
//
// A model run has a fixed cost (for gonnx: building a tensor map and operators
// and allocating each op's output, about 12 µs for Iris) that does not grow
// with the rows, so eight rows cost 1.7 times one row. Under concurrent load
// the calls that arrive while a run is under way wait for it to finish, then
// run together in the next one. Nothing ever waits for company: a call that
// finds a free runner runs at once, so a lone caller sees no added latency.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mlgate/mlgate/predictsvc/internal/model"
)

// Model merges concurrent Predict calls into runs of the wrapped model.
type Model struct {
	model.Model
	maxRows int // a merged run holds at most this many rows (a larger call runs alone)
	runners int // runs under way at most; more callers queue

	mu      sync.Mutex
	running int
	queue   []*call
}

// call is one Predict waiting in the queue.
type call struct {
	ctx   context.Context
	batch [][]float32
	out   [][]float32
	err   error
	// done receives true when out and err are set, or false when the call
	// must lead the next run itself.
	done chan bool
}

// New wraps m. runners is how many runs may be under way at once (match the
// model's own concurrency, e.g. GOMAXPROCS); maxRows bounds a merged run.
func New(m model.Model, runners, maxRows int) *Model {
	return &Model{Model: m, runners: max(runners, 1), maxRows: max(maxRows, 1)}
}

// Predict runs batch, alone or merged with calls made meanwhile. Results and
// errors are each call's own: a call whose rows the model refuses fails
// alone.
func (b *Model) Predict(ctx context.Context, batch [][]float32) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &call{ctx: ctx, batch: batch, done: make(chan bool, 1)}
	b.mu.Lock()
	if b.running < b.runners {
		b.running++
		b.mu.Unlock()
		b.lead(c)
		return c.out, c.err
	}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	// Not watching ctx here: the queue is at most one run ahead, and a
	// call that left could miss being asked to lead.
	if ready := <-c.done; !ready {
		b.lead(c)
	}
	return c.out, c.err
}

// lead runs own together with what is queued, answers every call it took,
// and then hands the runner over to the oldest call still queued, if any.
func (b *Model) lead(own *call) {
	b.mu.Lock()
	calls := []*call{own}
	rows := len(own.batch)
	taken := 0
	for _, c := range b.queue {
		if rows+len(c.batch) > b.maxRows {
			break
		}
		calls = append(calls, c)
		rows += len(c.batch)
		taken++
	}
	clear(b.queue[:taken]) // the backing array outlives them
	b.queue = b.queue[taken:]
	b.mu.Unlock()

	b.runGuarded(calls, rows)
	for _, c := range calls[1:] {
		c.done <- true
	}

	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running--
		b.mu.Unlock()
		return
	}
	next := b.queue[0]
	b.queue = b.queue[1:]
	b.mu.Unlock()
	next.done <- false
}

// runGuarded is run with a panic turned into every call's error: a panic
// escaping here would leave the calls it took waiting forever.
func (b *Model) runGuarded(calls []*call, rows int) {
	defer func() {
		if r := recover(); r != nil {
			for _, c := range calls {
				c.out, c.err = nil, fmt.Errorf("model run panicked: %v", r)
			}
		}
	}()
	b.run(calls, rows)
}

// run predicts every call's rows in one model run, and falls back to one run
// per call when the merged run fails, so one call's bad rows (or ended
// context) cost no other call its answer.
func (b *Model) run(calls []*call, rows int) {
	live := calls[:0:0]
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		c := live[0]
		c.out, c.err = b.Model.Predict(c.ctx, c.batch)
		return
	}
	merged := make([][]float32, 0, rows)
	for _, c := range live {
		merged = append(merged, c.batch...)
	}
	// The merged run serves several callers; none of their contexts alone
	// may cancel it (each was checked above, and a run is short).
	out, err := b.Model.Predict(context.WithoutCancel(live[0].ctx), merged)
	if err == nil && len(out) != len(merged) {
		err = errors.New("model returned a different number of rows")
	}
	if err != nil {
		for _, c := range live {
			c.out, c.err = b.Model.Predict(c.ctx, c.batch)
		}
		return
	}
	for _, c := range live {
		c.out, out = out[:len(c.batch):len(c.batch)], out[len(c.batch):]
	}
}
