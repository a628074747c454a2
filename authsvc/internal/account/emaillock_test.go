package account

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEmailLocks(t *testing.T) {
	var l emailLocks
	ctx := context.Background()
	unlockA, err := l.lock(ctx, "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Another email is not held up.
	unlockB, err := l.lock(ctx, "b@example.com")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()

	// The same email waits until its deadline.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(short, "a@example.com"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held email: %v, want the deadline", err)
	}

	// ... and gets it once the holder is done.
	got := make(chan func(), 1)
	go func() {
		unlock, err := l.lock(ctx, "a@example.com")
		if err != nil {
			t.Error(err)
		}
		got <- unlock
	}()
	unlockA()
	(<-got)()

	if n := len(l.locks); n != 0 {
		t.Errorf("%d lock entries left after every holder and waiter is done", n)
	}
}
