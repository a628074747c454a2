package throttle

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/authsvc/internal/sqlitestore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func newLimiter(t *testing.T, p Policy) (*Limiter, *clock) {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	l, err := New(st, p, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func throttled(t *testing.T, err error) *ThrottledError {
	t.Helper()
	var te *ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want ThrottledError", err)
	}
	return te
}

func TestAccountLockAfterFailures(t *testing.T) {
	l, c := newLimiter(t, Policy{AccountFailures: 3, AccountWindow: 10 * time.Minute, AddressAttempts: 1000, AddressWindow: time.Minute})
	ctx := context.Background()
	for i := range 3 {
		if err := l.Allow(ctx, "ada@example.com", "10.0.0.1:5"); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	c.advance(time.Minute)
	te := throttled(t, l.Allow(ctx, "ada@example.com", "10.0.0.2:5"))
	if te.RetryAfter != 9*time.Minute {
		t.Fatalf("retry after %s, want 9m (the rest of the window)", te.RetryAfter)
	}
	// Another account is not affected, and the lock lifts with the window.
	if err := l.Allow(ctx, "grace@example.com", "10.0.0.1:5"); err != nil {
		t.Fatal(err)
	}
	c.advance(9 * time.Minute)
	if err := l.Allow(ctx, "ada@example.com", "10.0.0.1:5"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestSuccessClearsFailures(t *testing.T) {
	l, _ := newLimiter(t, Policy{AccountFailures: 2, AccountWindow: time.Hour, AddressAttempts: 1000, AddressWindow: time.Minute})
	ctx := context.Background()
	l.Allow(ctx, "ada@example.com", "a")
	l.Allow(ctx, "ada@example.com", "a")
	if err := l.Succeeded(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := l.Allow(ctx, "ada@example.com", "a"); err != nil {
		t.Fatalf("first attempt after a success: %v", err)
	}
}

func TestAddressLimit(t *testing.T) {
	l, c := newLimiter(t, Policy{AccountFailures: 100, AccountWindow: time.Hour, AddressAttempts: 5, AddressWindow: time.Minute})
	ctx := context.Background()
	for i := range 5 {
		if err := l.Allow(ctx, "user@example.com", "192.0.2.7:1000"); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// The port does not matter: one address, one budget.
	throttled(t, l.Allow(ctx, "other@example.com", "192.0.2.7:2000"))
	if err := l.Allow(ctx, "user@example.com", "192.0.2.8:1000"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	c.advance(time.Minute)
	if err := l.Allow(ctx, "user@example.com", "192.0.2.7:1000"); err != nil {
		t.Fatalf("next window: %v", err)
	}
}

// Concurrent guesses all count before any is checked: at most the limit of
// them get through to the password check.
func TestConcurrentAttemptsCount(t *testing.T) {
	l, _ := newLimiter(t, Policy{AccountFailures: 5, AccountWindow: time.Hour, AddressAttempts: 1000, AddressWindow: time.Minute})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.Allow(context.Background(), "ada@example.com", "a") == nil {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 5 {
		t.Fatalf("%d of 30 concurrent attempts allowed, want 5", allowed)
	}
}

func TestRegisterAddressLimit(t *testing.T) {
	l, _ := newLimiter(t, Policy{AccountFailures: 5, AccountWindow: time.Hour, AddressAttempts: 2, AddressWindow: time.Minute})
	ctx := context.Background()
	for range 2 {
		if err := l.AllowAddress(ctx, "register", "192.0.2.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	throttled(t, l.AllowAddress(ctx, "register", "192.0.2.1:1"))
	// Registering does not use up the address's login budget.
	if err := l.Allow(ctx, "a@example.com", "192.0.2.1:1"); err != nil {
		t.Fatalf("login after registrations: %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Policy{AccountFailures: 0, AccountWindow: time.Minute, AddressAttempts: 1, AddressWindow: time.Minute}).Validate(); err == nil {
		t.Fatal("zero failures accepted")
	}
}

// countingCounters counts the writes a limiter makes.
type countingCounters struct {
	Counters
	mu   sync.Mutex
	hits int
}

func (c *countingCounters) CountHit(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	c.mu.Lock()
	c.hits++
	c.mu.Unlock()
	return c.Counters.CountHit(ctx, key, now, window)
}

// A flood against a locked email is refused on reads alone, and only the
// refusal that crossed the limit is marked First (the one worth recording).
func TestRefusedFloodCostsNoWrites(t *testing.T) {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counters := &countingCounters{Counters: st}
	c := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	l, err := New(counters, Policy{AccountFailures: 2, AccountWindow: time.Hour, AddressAttempts: 1000, AddressWindow: time.Hour}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var firsts int
	for i := range 50 {
		err := l.Allow(ctx, "ada@example.com", "")
		if i < 2 {
			if err != nil {
				t.Fatalf("attempt %d: %v", i, err)
			}
			continue
		}
		if throttled(t, err).First {
			firsts++
		}
	}
	if firsts != 1 {
		t.Errorf("%d refusals marked First, want 1", firsts)
	}
	if counters.hits != 3 {
		t.Errorf("%d counter writes for 50 attempts, want 3 (two allowed, one crossing the limit)", counters.hits)
	}
}

// Clear lifts a lock and says whether there was anything to lift.
func TestClearSaysWhetherAttemptsWereCounted(t *testing.T) {
	l, _ := newLimiter(t, Policy{AccountFailures: 1, AccountWindow: time.Hour, AddressAttempts: 1000, AddressWindow: time.Hour})
	ctx := context.Background()
	if cleared, err := l.Clear(ctx, "never@example.com"); err != nil || cleared {
		t.Fatalf("Clear of an email with no attempts = %v, %v; want false", cleared, err)
	}
	for range 2 {
		l.Allow(ctx, "ada@example.com", "")
	}
	if cleared, err := l.Clear(ctx, "ada@example.com"); err != nil || !cleared {
		t.Fatalf("Clear of a locked email = %v, %v; want true", cleared, err)
	}
	if err := l.Allow(ctx, "ada@example.com", ""); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
}
