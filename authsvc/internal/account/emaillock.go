package account

import (
	"context"
	"sync"
)

// emailLocks serialises registrations of one email on this replica. A burst
// of Registers for one address (a double-clicked form, a retrying client, an
// attack) then costs one bcrypt hash: the first computes it and creates the
// account, the rest find the email taken without hashing, rather than all
// hashing at once and overflowing the bounded bcrypt queue. The store's
// uniqueness still decides between replicas.
type emailLocks struct {
	mu    sync.Mutex
	locks map[string]*emailLock
}

type emailLock struct {
	held chan struct{} // holds a token while a registration of the email runs
	refs int           // holders and waiters; the entry goes when none are left
}

// lock waits, while ctx allows, until no other registration of key runs on
// this replica, and returns the function that ends this one.
func (l *emailLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[string]*emailLock)
	}
	e := l.locks[key]
	if e == nil {
		e = &emailLock{held: make(chan struct{}, 1)}
		l.locks[key] = e
	}
	e.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.held <- struct{}{}:
		return func() { <-e.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
